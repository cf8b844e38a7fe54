"""Fixtures for the embedded server's tests: compiled pipelines (real kfp compiler) and a wire recorder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kfp_api_spec import SpecValidator

from kfp_ci.local import _outer


@pytest.fixture(scope="session")
def pipelines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Compiled packages: ``add-square`` (2 steps), ``always-fails``, ``slow`` (sleeps), ``container``,
    ``metrics``, ``square``, ``fails-once`` (fails the first time)."""
    from kfp import compiler

    from . import pipeline_defs as d

    out = tmp_path_factory.mktemp("pipelines")
    paths = {}
    for name, func in [("add-square", d.add_square), ("always-fails", d.always_fails), ("slow", d.slow),
                       ("container", d.container), ("metrics", d.metrics),
                       ("square", d.square_named_like_its_component), ("fails-once", d.fails_once)]:
        paths[name] = out / f"{name}.yaml"
        compiler.Compiler().compile(func, str(paths[name]))
    return paths


@dataclass
class Exchange:
    method: str
    path: str
    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Wire:
    """Every answer the server sent (seen at the ASGI boundary, exactly as the client received it)."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []

    def validate(self, spec_name: str, v1_spec: str | None = None) -> int:
        """Validate every JSON API answer against the spec of its API; returns how many were checked."""
        specs = {"v2beta1": SpecValidator(spec_name) if spec_name.startswith("v2") else None,
                 "v1beta1": SpecValidator(v1_spec or spec_name) if (v1_spec or spec_name).startswith("v1") else None}
        checked = 0
        for ex in self.exchanges:
            path = ex.path[len("/pipeline"):] if ex.path.startswith("/pipeline/") else ex.path
            if not path.startswith("/apis/") or not ex.body:
                continue
            if ex.status == 403 and ex.body == b"RBAC: access denied":
                continue  # the Istio proxy's answer, not KFP's
            api = path.split("/")[2]
            spec = specs.get(api)
            if spec is None and ex.status == 404 and ex.content_type.startswith("text/plain"):
                continue  # an API this generation lacks: a plain 404, like KFP's router
            assert spec is not None, f"{ex.method} {ex.path} answered on an API this generation lacks"
            body = json.loads(ex.body)
            if path.endswith("/healthz"):  # KFP adds commit_sha/tag_name beyond the swagger model
                body = {k: v for k, v in body.items() if k in ("multi_user", "pipeline_store")}
                if spec.name == "v2beta1-2.5.0":
                    body.pop("pipeline_store", None)
            if ex.status >= 400 and path.endswith(("/upload", "/upload_version")):
                # KFP's hand-written upload handlers answer api.Error, not the swagger's google.rpc.Status
                assert set(body) == {"error_message", "error_details"}, body
            elif ex.status >= 400 and spec.name in ("v2beta1-2.5.0", "v1beta1-1.8.5") and "details" in body:
                # gateway v1 marshals each google.protobuf.Any detail as {"@type": ..., fields} (as captured from
                # KFP 1.x, P#7302, which also carries "message"); those swaggers model Any as {type_url, value} and
                # 1.8.5's apiStatus lacks "message", so check the rest against the spec
                assert all("@type" in d for d in body["details"]) and body["message"], body
                rest = {k: v for k, v in body.items() if k not in ("details", "message")}
                spec.validate_response(ex.method, path, ex.status, rest)
            else:
                spec.validate_response(ex.method, path, ex.status, body)
            checked += 1
        return checked


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Iterator[Wire]:
    recorder = Wire()
    original = _outer.Outer.__call__

    async def recording(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await original(self, scope, receive, send)
        state: dict[str, Any] = {"status": 0, "ctype": "", "body": b""}

        async def spy(message: Any) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["ctype"] = dict(message.get("headers") or []).get(b"content-type", b"").decode()
            elif message["type"] == "http.response.body":
                state["body"] += message.get("body", b"")
            await send(message)

        await original(self, scope, receive, spy)
        recorder.exchanges.append(Exchange(scope["method"], scope["path"], state["status"], state["ctype"],
                                           state["body"]))

    monkeypatch.setattr(_outer.Outer, "__call__", recording)
    yield recorder
