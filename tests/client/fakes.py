"""Test doubles for the client unit tests.

``SpecFake`` is an ``httpx.MockTransport`` handler that checks every request against a KFP swagger spec (method,
path, query parameters, JSON body, multipart field names) and answers from a small table of canned, spec-shaped
responses keyed by the operation's path template. It stands in for a real KFP cluster, which cannot run here; the
integration tests use the embedded server instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from kfp_api_spec import SpecValidator

from kfp_ci.client import Client, RetryPolicy

Answer = httpx.Response | dict[str, Any] | Callable[[httpx.Request], httpx.Response]


PACKAGE = """\
# PIPELINE DEFINITION
# Name: add-square
components:
  comp-add:
    executorLabel: exec-add
deploymentSpec:
  executors:
    exec-add:
      container:
        image: python:3.11
        command: [python, -c, "print(1)"]
pipelineInfo:
  name: add-square
root:
  dag:
    tasks:
      add:
        componentRef:
          name: comp-add
        taskInfo:
          name: add
schemaVersion: 2.1.0
sdkVersion: kfp-2.17.0
"""


@dataclass
class SpecFake:
    """Validates each request against ``spec`` and answers from ``answers[(METHOD, template)]``."""

    spec_name: str
    version: str
    multi_user: bool = False
    answers: dict[tuple[str, str], list[Answer]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.spec = SpecValidator(self.spec_name)
        self.api = self.spec_name.split("-")[0]

    def on(self, method: str, template: str, *answers: Answer) -> None:
        """Queue answers for an operation (the last one repeats)."""
        self.answers[(method.upper(), template)] = list(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path.startswith("/pipeline/"):
            path = path[len("/pipeline"):]
        if path.endswith("/healthz"):
            if f"/apis/{self.api}/" not in path:
                return httpx.Response(404, text="404 page not found\n")
            return httpx.Response(200, json={"commit_sha": "abc", "tag_name": self.version,
                                             "multi_user": self.multi_user})
        query = list(request.url.params.multi_items())
        body: Any = None
        fields: list[str] = []
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            fields = re.findall(r'form-data; name="([^"]+)"', request.content.decode("utf-8", "replace"))
        elif request.content:
            body = json.loads(request.content)
        op = self.spec.validate_request(request.method, path, query, _protobuf_values(self.spec_name, body),
                                        form_fields=fields)
        queue = self.answers.get((request.method, op.template))
        if not queue:
            return httpx.Response(200, json={})
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if callable(answer):
            return answer(request)
        if isinstance(answer, httpx.Response):
            return answer
        self.spec.validate_response(request.method, path, 200, _protobuf_values(self.spec_name, answer))
        return httpx.Response(200, json=answer)

    def calls(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]


def make_client(handler: Callable[[httpx.Request], httpx.Response], host: str = "http://kfp.test",
                **kwargs: Any) -> Client:
    kwargs.setdefault("retry", RetryPolicy(attempts=4))
    return Client(host, transport=httpx.MockTransport(handler), **kwargs)


def _protobuf_values(spec_name: str, body: Any) -> Any:
    """The 2.5.0 swagger renders ``google.protobuf.Value`` (run parameters) as ``type: object``, a generator
    artifact: the server takes any JSON value there, and kfp.Client sends numbers and strings. Check those values
    are JSON values, then validate the rest with every ``runtime_config.parameters`` emptied."""
    if spec_name != "v2beta1-2.5.0":
        return body
    if isinstance(body, list):
        return [_protobuf_values(spec_name, item) for item in body]
    if not isinstance(body, dict):
        return body
    out = {k: _protobuf_values(spec_name, v) for k, v in body.items()}
    config = body.get("runtime_config")
    if isinstance(config, dict) and isinstance(config.get("parameters"), dict):
        for value in config["parameters"].values():
            assert value is None or isinstance(value, (str, int, float, bool, list, dict))
        out["runtime_config"] = {**config, "parameters": {}}
    return out
