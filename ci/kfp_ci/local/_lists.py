"""List requests like KFP's list_request_util: filter predicates, ``sort_by`` and page tokens, answered in SQL.

A list is one ``SELECT`` over the store's ``objects`` table (indexed columns for id, name, namespace, parent and
created_at; ``json_extract`` over the document, with expression indexes for a run's experiment and state, for the
other fields), so a page costs the same with 100,000 runs as with ten: only the page's rows are decoded.

What a predicate means is the server's long-standing reading, kept exactly: timestamps (``*_at``) compare as epoch
seconds with a missing time as 0; other fields compare as strings (a missing one as ''), a non-string value as its
text; ``IN`` keeps the listed values of the field's kind; ``IS_SUBSTRING`` looks for the value's text. A sort keeps
the insertion order among equal keys (descending too); no ``sort_by`` lists in insertion order.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kfp_ci.local._fields import enum, int64, parse_ts
from kfp_ci.local._http import bad
from kfp_ci.local._store import Record, Store

Query = Mapping[str, str]

OPS = {"EQUALS": 1, "NOT_EQUALS": 2, "GREATER_THAN": 3, "GREATER_THAN_EQUALS": 5, "LESS_THAN": 6,
       "LESS_THAN_EQUALS": 7, "IN": 8, "IS_SUBSTRING": 9}
OP_NAMES = {v: k for k, v in OPS.items()}
FILTER_KEYS: dict[str, dict[str, str]] = {
    "pipeline": {"pipeline_id": "id", "id": "id", "name": "name", "display_name": "display_name",
                 "created_at": "created_at", "description": "description", "namespace": "namespace"},
    "version": {"pipeline_version_id": "id", "id": "id", "name": "name", "display_name": "display_name",
                "created_at": "created_at", "description": "description", "status": "status"},
    "experiment": {"experiment_id": "id", "id": "id", "name": "name", "display_name": "name",
                   "created_at": "created_at", "last_run_created_at": "last_run_created_at",
                   "description": "description", "namespace": "namespace", "storage_state": "storage_state"},
    "run": {"run_id": "id", "id": "id", "display_name": "name", "name": "name", "created_at": "created_at",
            "finished_at": "finished_at", "scheduled_at": "scheduled_at", "state": "state",
            "experiment_id": "experiment_id", "recurring_run_id": "recurring_run_id", "namespace": "namespace",
            "storage_state": "storage_state", "description": "description"},
    "recurring": {"recurring_run_id": "id", "id": "id", "display_name": "name", "name": "name",
                  "created_at": "created_at", "updated_at": "updated_at", "description": "description",
                  "experiment_id": "experiment_id", "namespace": "namespace"},
}
_VALUE_KEYS = ("string_value", "int_value", "long_value", "timestamp_value", "string_values", "int_values",
               "long_values", "stringValue", "intValue", "longValue", "timestampValue", "stringValues",
               "intValues", "longValues")
_COMPARE = {"EQUALS": "=", "NOT_EQUALS": "!=", "GREATER_THAN": ">", "GREATER_THAN_EQUALS": ">=", "LESS_THAN": "<",
            "LESS_THAN_EQUALS": "<="}
FALSE = ("0", ())


@dataclass
class Scope:
    """What a list is restricted to before its filter: a namespace, a parent, an experiment (None: any), and
    fields read from another field (``display_name`` is ``name`` before KFP 2.14)."""

    namespace: str | None = None
    parent: str | None = None
    experiment_id: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)

    def where(self, store: Store) -> list[tuple[str, Sequence[Any]]]:
        out: list[tuple[str, Sequence[Any]]] = []
        if self.namespace is not None:
            out.append(("namespace = ?", (self.namespace,)))
        if self.parent is not None:
            out.append(("parent = ?", (self.parent,)))
        if self.experiment_id is not None:
            out.append((f"{store.column('experiment_id')} = ?", (self.experiment_id,)))
        return out


def _value(pred: dict[str, Any]) -> Any:
    for vk in _VALUE_KEYS:
        if vk in pred:
            value = pred[vk]
            return value.get("values", []) if isinstance(value, dict) else value
    return None


def _condition(pred: Any, keys: dict[str, str], op_field: str, store: Store,
               aliases: Mapping[str, str]) -> tuple[str, Sequence[Any]]:
    """One predicate as an SQL condition and its arguments."""
    if not isinstance(pred, dict):
        raise bad("filter predicates must be objects")
    allowed = {op_field, "key", *_VALUE_KEYS}
    for k in pred:
        if k not in allowed:
            raise bad(f'unknown field "{k}" in filter predicate')
    key = str(pred.get("key", ""))
    if key not in keys:
        raise bad(f"filter key {key!r} is not supported; use one of {sorted(keys)}")
    op = enum(pred.get(op_field, 0), OPS, "filter operation")
    fld = keys[key]
    column = store.column(aliases.get(fld, fld))
    value = _value(pred)
    if key.endswith("_at"):
        if isinstance(value, list):
            value = [parse_ts(v, key) for v in value]
        elif isinstance(value, str) and not value.lstrip("-").isdigit():
            value = parse_ts(value, key)
        else:
            value = float(value or 0)
    stored = column.startswith("json_extract")  # may be missing; the table's own columns are never NULL
    if fld.endswith("_at"):
        return _time_condition(f"COALESCE({column}, 0)" if stored else column, op, value, key)
    return _text_condition(f"COALESCE({column}, '')" if stored else column, op, value, key)


def _time_condition(actual: str, op: str, value: Any, key: str) -> tuple[str, Sequence[Any]]:
    """A timestamp field (epoch seconds; missing: 0) against a parsed value."""
    if op == "IN":
        if isinstance(value, list):
            numbers = [v for v in value if isinstance(v, (int, float))]
            return (f"{actual} IN ({', '.join('?' * len(numbers))})", numbers) if numbers else FALSE
        if not value:
            return FALSE
        raise bad(f"filter on {key!r} with IN needs a list of values")
    if op == "IS_SUBSTRING":
        return f"instr(kfp_text({actual}), ?) > 0", (str(value),)
    if not isinstance(value, (int, float)):
        return FALSE
    return f"{actual} {_COMPARE[op]} ?", (float(value),)


def _text_condition(actual: str, op: str, value: Any, key: str) -> tuple[str, Sequence[Any]]:
    """A string field (missing: '') against a value, compared as text."""
    if op == "IN":
        if isinstance(value, list):
            texts = [v for v in value if isinstance(v, str)]
            return (f"{actual} IN ({', '.join('?' * len(texts))})", texts) if texts else FALSE
        if not value:
            return FALSE
        if isinstance(value, str):  # a single string: the field's text occurs in it
            return f"instr(?, {actual}) > 0", (value,)
        raise bad(f"filter on {key!r} with IN needs a list of values")
    text = value if isinstance(value, str) else str(value)
    if op == "IS_SUBSTRING":
        return f"instr({actual}, ?) > 0", (text,)
    return f"{actual} {_COMPARE[op]} ?", (text,)


def _token(raw_filter: str, sort_by: str, offset: int) -> str:
    state = {"offset": offset, "filter": raw_filter, "sort_by": sort_by}
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode()


def list_page(store: Store, kind: str, query: Query, *, op_field: str, keys: dict[str, str] | None = None,
              scope: Scope | None = None) -> tuple[list[Record], int, str]:
    """Filter, sort and paginate like KFP's list_request_util: (page, total_size, next_page_token)."""
    keys = keys or FILTER_KEYS[kind]
    scope = scope or Scope()
    token = query.get("page_token") or ""
    offset = 0
    if token:
        try:
            state = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
            offset = int(state["offset"])
            query = {**query, "filter": state.get("filter", ""), "sort_by": state.get("sort_by", "")}
        except (ValueError, KeyError, TypeError):
            raise bad(f"invalid page token {token!r}") from None
        if offset < 0:
            raise bad(f"invalid page token {token!r}")
    where = scope.where(store)
    scoped_only = True  # a scope's fields never change, so its count can be kept up to date cheaply
    raw_filter = query.get("filter") or ""
    if raw_filter:
        try:
            parsed = json.loads(raw_filter)
        except ValueError:
            raise bad(f"filter is not valid JSON: {raw_filter!r}") from None
        if not isinstance(parsed, dict) or set(parsed) - {"predicates"}:
            raise bad("filter must be a JSON object with 'predicates'")
        predicates = parsed.get("predicates") or []
        where += [_condition(p, keys, op_field, store, scope.aliases) for p in predicates]
        scoped_only = not predicates
    sort_by = (query.get("sort_by") or "").strip()
    order = "seq"
    if sort_by:
        parts = sort_by.split()
        skey = parts[0]
        desc = len(parts) > 1 and parts[1].lower() == "desc"
        if skey not in keys or len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
            raise bad(f"Invalid sorting field: {sort_by!r}. Supported fields are: {sorted(keys)}")
        fld = keys[skey]
        # equal keys keep the insertion order, descending too
        order = f"{store.column(scope.aliases.get(fld, fld))} {'DESC' if desc else 'ASC'}, seq ASC"
    size = int64(query.get("page_size") or 0, "page_size")
    if size < 0:
        raise bad("page_size must not be negative")
    size = 20 if size == 0 else min(size, 200)
    page, total = store.page(kind, where, order=order, limit=size, offset=offset, stable_count=scoped_only)
    next_token = _token(raw_filter, sort_by, offset + size) if offset + size < total else ""
    return page, total, next_token
