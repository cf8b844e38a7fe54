"""The reference reading of list requests: the server's former in-Python filter, sort and paging over every
decoded record (before lists moved to SQL). ``test_lists`` checks the SQL lists answer exactly as this does."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any

from kfp_ci.local._fields import enum, int64, parse_ts
from kfp_ci.local._http import bad
from kfp_ci.local._lists import FILTER_KEYS, OPS
from kfp_ci.local._store import Record

Query = Mapping[str, str]

_VALUE_KEYS = ("string_value", "int_value", "long_value", "timestamp_value", "string_values", "int_values",
               "long_values", "stringValue", "intValue", "longValue", "timestampValue", "stringValues",
               "intValues", "longValues")


def _field(record: Record, key: str) -> Any:
    if key == "namespace":
        return record.get("_ns", "")
    return record.get(key)


def _predicate(pred: Any, keys: dict[str, str], op_field: str) -> Callable[[Record], bool]:
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
    field = keys[key]
    value: Any = None
    for vk in _VALUE_KEYS:
        if vk in pred:
            value = pred[vk]
            if isinstance(value, dict):
                value = value.get("values", [])
            break
    if key.endswith("_at"):
        value = [parse_ts(v, key) for v in value] if isinstance(value, list) else (
            parse_ts(value, key) if isinstance(value, str) and not value.lstrip("-").isdigit() else float(value or 0))

    def norm(v: Any) -> Any:
        if field.endswith("_at"):
            return float(v or 0)
        return "" if v is None else v

    def test(record: Record) -> bool:
        actual = norm(_field(record, field))
        target = value
        if op == "IN":
            return actual in (target or [])
        if op == "IS_SUBSTRING":
            return str(target) in str(actual)
        if isinstance(actual, (int, float)) and not isinstance(target, (int, float)):
            try:
                target = float(target)
            except (TypeError, ValueError):
                return False
        if isinstance(actual, str) and not isinstance(target, str):
            target = str(target)
        if op == "EQUALS":
            return bool(actual == target)
        if op == "NOT_EQUALS":
            return bool(actual != target)
        try:
            if op == "GREATER_THAN":
                return bool(actual > target)
            if op == "GREATER_THAN_EQUALS":
                return bool(actual >= target)
            if op == "LESS_THAN":
                return bool(actual < target)
            if op == "LESS_THAN_EQUALS":
                return bool(actual <= target)
        except TypeError:
            return False
        return False

    return test


def list_page(records: list[Record], kind: str, query: Query, *, op_field: str,
              keys: dict[str, str] | None = None) -> tuple[list[Record], int, str]:
    """Filter, sort and paginate like KFP's list_request_util: (page, total_size, next_page_token)."""
    keys = keys or FILTER_KEYS[kind]
    token = query.get("page_token") or ""
    offset = 0
    if token:
        try:
            state = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
            offset = int(state["offset"])
            query = {**query, "filter": state.get("filter", ""), "sort_by": state.get("sort_by", "")}
        except (ValueError, KeyError, TypeError):
            raise bad(f"invalid page token {token!r}") from None
    raw_filter = query.get("filter") or ""
    if raw_filter:
        try:
            parsed = json.loads(raw_filter)
        except ValueError:
            raise bad(f"filter is not valid JSON: {raw_filter!r}") from None
        if not isinstance(parsed, dict) or set(parsed) - {"predicates"}:
            raise bad("filter must be a JSON object with 'predicates'")
        tests = [_predicate(p, keys, op_field) for p in parsed.get("predicates") or []]
        records = [r for r in records if all(t(r) for t in tests)]
    sort_by = (query.get("sort_by") or "").strip()
    if sort_by:
        parts = sort_by.split()
        skey = parts[0]
        desc = len(parts) > 1 and parts[1].lower() == "desc"
        if skey not in keys or len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
            raise bad(f"Invalid sorting field: {sort_by!r}. Supported fields are: {sorted(keys)}")
        field = keys[skey]
        records = sorted(records, key=lambda r: (_sortable(_field(r, field)), r.get("_seq", 0)), reverse=desc)
    size = int64(query.get("page_size") or 0, "page_size")
    if size < 0:
        raise bad("page_size must not be negative")
    size = 20 if size == 0 else min(size, 200)
    page = records[offset: offset + size]
    next_token = ""
    if offset + size < len(records):
        next_token = base64.urlsafe_b64encode(json.dumps(
            {"offset": offset + size, "filter": raw_filter, "sort_by": sort_by}).encode()).decode()
    return page, len(records), next_token


def _sortable(v: Any) -> Any:
    if v is None:
        return (0, "")
    if isinstance(v, (int, float)):
        return (1, v)
    return (2, str(v))
