"""Lists in SQL answer exactly as the former in-Python reading (``list_oracle``): every filter key and operation,
value kinds, sort keys both ways with ties, scopes and page walks, over one store of varied records."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest

from kfp_ci.local._http import HttpError
from kfp_ci.local._lists import FILTER_KEYS, Scope, list_page
from kfp_ci.local._store import Record, Store

from . import list_oracle

BASE = 1_767_225_600.0  # 2026-01-01T00:00:00Z
STATES = ["SUCCEEDED", "FAILED", "RUNNING", "PENDING", "CANCELED"]


def _records(rng: random.Random) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = {k: [] for k in FILTER_KEYS}
    for i in range(160):
        created = BASE + rng.choice([0, 0, 1, 2.5, 60, 3600]) + i // 7  # many equal seconds
        out["run"].append({
            "id": f"r-{rng.randrange(10**6):06d}-{i}", "name": rng.choice(["a", "b", "ab", "B", "é", ""]),
            "created_at": created, "finished_at": rng.choice([None, created + 5, created + 0.5]),
            "scheduled_at": created, "state": rng.choice(STATES), "experiment_id": rng.choice(["e1", "e2", "e3"]),
            "recurring_run_id": rng.choice(["", "", "rr1"]), "_ns": rng.choice(["", "ns-a", "ns-b"]),
            "storage_state": rng.choice(["AVAILABLE", "ARCHIVED"]), "description": rng.choice([None, "", "x y"]),
            "_parent": "",
        })
    for i in range(40):
        out["pipeline"].append({"id": f"p-{i:03d}", "name": rng.choice(["pa", "pb", "a-2", "c"]) + str(i % 5),
                                "display_name": rng.choice(["Shown", "other", "pa"]),
                                "created_at": BASE + i // 3, "description": rng.choice(["", "desc"]),
                                "_ns": rng.choice(["", "ns-a"])})
        out["version"].append({"id": f"v-{i:03d}", "name": f"v{i % 6}", "display_name": rng.choice(["V", "w"]),
                               "created_at": BASE + i // 4, "description": "", "_parent": rng.choice(["p1", "p2"])})
        out["experiment"].append({"id": f"e-{i:03d}", "name": rng.choice(["Default", "exp", "x"]),
                                  "created_at": BASE + i, "last_run_created_at": rng.choice([None, BASE + 9]),
                                  "description": "", "storage_state": rng.choice(["AVAILABLE", "ARCHIVED"]),
                                  "_ns": rng.choice(["", "ns-a"])})
        out["recurring"].append({"id": f"rr-{i:03d}", "name": rng.choice(["daily", "hourly"]),
                                 "created_at": BASE + i // 2, "updated_at": rng.choice([BASE, BASE + 30]),
                                 "description": "", "experiment_id": rng.choice(["e1", "e2"]), "_ns": ""})
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    s = Store(Path(tmp_path_factory.mktemp("lists")))
    for kind, records in _records(random.Random(16)).items():
        for r in records:
            s.insert(kind, r)
    return s


def _values(key: str) -> list[dict[str, Any]]:
    if key.endswith("_at"):
        return [{"timestamp_value": "2026-01-01T00:00:02Z"}, {"long_value": str(int(BASE) + 3)},
                {"int_value": int(BASE) + 1}, {"string_value": ""}, {"long_values": {"values": [str(int(BASE))]}},
                {"timestampValue": "2026-01-01T00:00:05.000Z"}, {}]
    return [{"string_value": "a"}, {"string_value": "AVAILABLE"}, {"string_value": ""}, {"string_value": "SUCCEEDED"},
            {"string_values": {"values": ["a", "b", "e1", "RUNNING"]}}, {"int_value": 3}, {"stringValue": "e2"},
            {"string_value": "ab"}, {}]


def _answer(fn: Any) -> Any:
    try:
        return fn()
    except HttpError as exc:
        return ("error", exc.status)


def _walk(run: Any, query: dict[str, str]) -> list[Any]:
    """Every page of a list, following next_page_token."""
    pages = []
    for _ in range(200):
        page, total, token = run(query)
        pages.append(([r["id"] for r in page], total))
        if not token:
            return pages
        query = {"page_token": token, "page_size": query.get("page_size", "")}
    raise AssertionError("the page tokens never end")


def _compare(store: Store, kind: str, query: dict[str, str], scope: Scope, op_field: str,
             keys: dict[str, str]) -> None:
    records = store.list(kind, parent=scope.parent, namespace=scope.namespace)
    if scope.experiment_id is not None:
        records = [r for r in records if r.get("experiment_id") == scope.experiment_id]
    records = [dict(r, **{a: r[b] for a, b in scope.aliases.items()}) for r in records]

    def expected(q: dict[str, str]) -> Any:
        return list_oracle.list_page(records, kind, q, op_field=op_field, keys=keys)

    def actual(q: dict[str, str]) -> Any:
        return list_page(store, kind, q, op_field=op_field, keys=keys, scope=scope)

    try:
        want = _answer(lambda: _walk(expected, query))
    except TypeError:  # the former reading crashed (IN with one number): now a 400
        assert _answer(lambda: _walk(actual, query)) == ("error", 400)
        return
    assert _answer(lambda: _walk(actual, query)) == want, (kind, query, scope)


@pytest.mark.parametrize("kind", sorted(FILTER_KEYS))
def test_every_filter_key_operation_and_value_answers_as_before(store: Store, kind: str) -> None:
    keys = FILTER_KEYS[kind]
    for key, op in itertools.product(sorted(keys), ["EQUALS", "NOT_EQUALS", "GREATER_THAN", "GREATER_THAN_EQUALS",
                                                    "LESS_THAN", "LESS_THAN_EQUALS", "IN", "IS_SUBSTRING"]):
        for value in _values(key):
            flt = json.dumps({"predicates": [{"operation": op, "key": key, **value}]})
            _compare(store, kind, {"filter": flt, "page_size": "200"}, Scope(), "operation", keys)


@pytest.mark.parametrize("kind", sorted(FILTER_KEYS))
def test_sorts_scopes_and_page_walks_answer_as_before(store: Store, kind: str) -> None:
    keys = FILTER_KEYS[kind]
    scopes = [Scope(), Scope(namespace="ns-a"), Scope(namespace=""), Scope(aliases={"display_name": "name"})]
    if kind in ("run", "recurring"):
        scopes.append(Scope(experiment_id="e2"))
    if kind == "version":
        scopes.append(Scope(parent="p1"))
    two = json.dumps({"predicates": [{"operation": "NOT_EQUALS", "key": "name", "string_value": "a"},
                                     {"operation": "GREATER_THAN", "key": "created_at", "int_value": int(BASE) + 1}]})
    for scope in scopes:
        for sort_by in ["", *(f"{k}{d}" for k in sorted(keys) for d in ("", " asc", " desc", " DESC"))]:
            for size in ("", "7", "1000"):
                _compare(store, kind, {"sort_by": sort_by, "page_size": size}, scope, "operation", keys)
            _compare(store, kind, {"sort_by": sort_by, "page_size": "9", "filter": two}, scope, "operation", keys)


def test_bad_requests_are_refused_alike(store: Store) -> None:
    keys = FILTER_KEYS["run"]
    for query in [{"sort_by": "colour"}, {"sort_by": "name sideways"}, {"filter": "{"}, {"filter": "[]"},
                  {"filter": json.dumps({"predicates": [{"operation": "EQUALS", "key": "nope"}]})},
                  {"filter": json.dumps({"predicates": [{"op": "EQUALS", "key": "name"}]})},
                  {"page_size": "-1"}, {"page_size": "many"}, {"page_token": "not-a-token"}]:
        _compare(store, "run", query, Scope(), "operation", keys)
    v1 = {"id": "id", "name": "name", "created_at": "created_at", "status": "state"}
    flt = json.dumps({"predicates": [{"op": 1, "key": "status", "string_value": "FAILED"}]})
    _compare(store, "run", {"filter": flt, "sort_by": "created_at desc", "page_size": "5"}, Scope(), "op", v1)
