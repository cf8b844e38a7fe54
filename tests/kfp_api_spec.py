"""Validate KFP REST requests and responses against KFP's published swagger specs.

The specs live in ``shared/kfp-api/`` beside the project root (``KFP_CI_SHARED`` overrides the ``shared``
directory). Usage in tests::

    from kfp_api_spec import SpecValidator

    spec = SpecValidator("v2beta1-2.17.0")
    spec.validate_response("GET", "/apis/v2beta1/pipelines", 200, body)
    spec.validate_request("POST", "/apis/v2beta1/runs", query={}, body={...})

Objects are checked strictly: a property the spec does not define is an error (real KFP servers answer only
defined fields and, since 2.14, reject unknown request fields). Failures raise :class:`SpecError`, an
``AssertionError`` whose message names the operation and the offending field.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

__all__ = ["SPEC_NAMES", "SpecError", "SpecValidator", "spec_dir"]

SPEC_NAMES = ("v2beta1-2.17.0", "v2beta1-2.5.0", "v1beta1-1.8.5", "v1beta1-2.17.0")

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


class SpecError(AssertionError):
    """A request or response does not conform to the swagger spec."""


def spec_dir() -> Path:
    shared = os.environ.get("KFP_CI_SHARED")
    if shared:
        return Path(shared) / "kfp-api"
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "shared" / "kfp-api"
        if candidate.is_dir():
            return candidate
        sibling = parent.parent / "shared" / "kfp-api"
        if sibling.is_dir():
            return sibling
    fetched = here.parents[1] / ".kfp-ci" / "shared" / "kfp-api"  # scripts/setup-kfp-api on a machine without them
    if fetched.is_dir():
        return fetched
    raise FileNotFoundError("shared/kfp-api not found beside the project: run scripts/setup-kfp-api or set "
                            "KFP_CI_SHARED")


@dataclass(frozen=True)
class Operation:
    template: str
    method: str
    spec: Mapping[str, Any]
    path_params: Mapping[str, str]

    @property
    def name(self) -> str:
        return f"{self.method.upper()} {self.template} ({self.spec.get('operationId', '?')})"


def _strict(schema: Any) -> Any:
    """Copy of ``schema`` with ``additionalProperties: false`` on every object that lists properties."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


_format_checker = jsonschema.FormatChecker()


@_format_checker.checks("date-time")
def _is_datetime(value: object) -> bool:
    return not isinstance(value, str) or bool(_RFC3339.match(value))


@_format_checker.checks("int64")
def _is_int64(value: object) -> bool:
    if isinstance(value, str):
        return bool(re.fullmatch(r"-?\d+", value))
    return isinstance(value, int)


class SpecValidator:
    """One swagger spec: match an HTTP call to its operation and validate bodies and parameters."""

    def __init__(self, name: str) -> None:
        if name not in SPEC_NAMES:
            raise ValueError(f"unknown spec {name!r}; one of {SPEC_NAMES}")
        self.name = name
        self.doc = _load(name)
        self._definitions = _strict(self.doc["definitions"])
        self._routes = sorted(
            ((_template_regex(t), t) for t in self.doc["paths"]),
            key=lambda item: (item[1].count("{"), -len(item[1])),
        )

    # ------------------------------------------------------------------ matching
    def operation(self, method: str, path: str) -> Operation:
        """The operation for ``method path`` (a ``/pipeline`` prefix and query string are ignored)."""
        path = path.split("?", 1)[0]
        if path.startswith("/pipeline/"):
            path = path[len("/pipeline") :]
        for regex, template in self._routes:
            match = regex.fullmatch(path)
            if match is None:
                continue
            ops = self.doc["paths"][template]
            if method.lower() in ops:
                params = {_unmangle(k): v for k, v in match.groupdict().items()}
                return Operation(template, method.lower(), ops[method.lower()], params)
        raise SpecError(f"{self.name}: no operation {method.upper()} {path}")

    # ------------------------------------------------------------------ validation
    def _validate(self, instance: Any, schema: Mapping[str, Any], where: str) -> None:
        resolvable = {"definitions": self._definitions, **_strict(dict(schema))}
        validator = jsonschema.Draft4Validator(resolvable, format_checker=_format_checker)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        if errors:
            first = errors[0]
            location = "/".join(str(p) for p in first.absolute_path) or "<root>"
            raise SpecError(f"{self.name}: {where}: at {location}: {first.message}")

    def validate_response(self, method: str, path: str, status: int, body: Any) -> Operation:
        """Check a response body against the operation's schema for ``status`` (or ``default``)."""
        op = self.operation(method, path)
        responses = op.spec.get("responses", {})
        entry = responses.get(str(status)) or responses.get("default")
        if entry is None:
            raise SpecError(f"{self.name}: {op.name}: status {status} not declared")
        schema = entry.get("schema")
        if schema is not None:
            self._validate(body, schema, f"response of {op.name} ({status})")
        return op

    def validate_request(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | Iterable[tuple[str, str]] | None = None,
        body: Any = None,
        *,
        form_fields: Iterable[str] = (),
    ) -> Operation:
        """Check query parameters (declared, required, typed), the JSON body and multipart field names."""
        op = self.operation(method, path)
        params = op.spec.get("parameters", [])
        declared = {p["name"]: p for p in params if p.get("in") == "query"}
        pairs: list[tuple[str, Any]]
        if query is None:
            pairs = []
        elif isinstance(query, Mapping):
            pairs = list(query.items())
        else:
            pairs = list(query)
        seen = set()
        for key, value in pairs:
            if key not in declared:
                raise SpecError(f"{self.name}: {op.name}: undeclared query parameter {key!r} "
                                f"(declared: {sorted(declared)})")
            seen.add(key)
            _check_scalar(self.name, op, key, declared[key], value)
        for p in params:
            if p.get("required") and p.get("in") == "query" and p["name"] not in seen:
                raise SpecError(f"{self.name}: {op.name}: missing required query parameter {p['name']!r}")
        body_params = [p for p in params if p.get("in") == "body"]
        form_params = {p["name"]: p for p in params if p.get("in") == "formData"}
        if body_params:
            if body is None:
                if body_params[0].get("required"):
                    raise SpecError(f"{self.name}: {op.name}: request body required")
            else:
                self._validate(body, body_params[0]["schema"], f"request body of {op.name}")
        elif body not in (None, {}, b"", ""):
            if not form_params:
                raise SpecError(f"{self.name}: {op.name}: takes no request body, got {body!r:.80}")
        fields = set(form_fields)
        for name in fields:
            if name not in form_params:
                raise SpecError(f"{self.name}: {op.name}: undeclared form field {name!r}")
        for name, p in form_params.items():
            if p.get("required") and name not in fields:
                raise SpecError(f"{self.name}: {op.name}: missing form field {name!r}")
        return op

    def definition(self, name: str) -> Mapping[str, Any]:
        return copy.deepcopy(self.doc["definitions"][name])


def _check_scalar(spec: str, op: Operation, key: str, param: Mapping[str, Any], value: Any) -> None:
    kind = param.get("type")
    text = str(value)
    if kind == "integer" and not re.fullmatch(r"-?\d+", text):
        raise SpecError(f"{spec}: {op.name}: query parameter {key!r} must be an integer, got {text!r}")
    if kind == "boolean" and text not in ("true", "false", "True", "False", "1", "0"):
        raise SpecError(f"{spec}: {op.name}: query parameter {key!r} must be a boolean, got {text!r}")
    if "enum" in param and text not in param["enum"]:
        raise SpecError(f"{spec}: {op.name}: query parameter {key!r} must be one of {param['enum']}, got {text!r}")


def _mangle(name: str) -> str:
    return name.replace(".", "__dot__")


def _unmangle(name: str) -> str:
    return name.replace("__dot__", ".")


def _template_regex(template: str) -> re.Pattern[str]:
    pattern = ""
    for part in re.split(r"(\{[^}]+\})", template):
        if part.startswith("{") and part.endswith("}"):
            pattern += f"(?P<{_mangle(part[1:-1])}>[^/:]+)"
        else:
            pattern += re.escape(part)
    return re.compile(pattern)


@functools.cache
def _load(name: str) -> dict[str, Any]:
    with open(spec_dir() / f"{name}.swagger.json", encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data
