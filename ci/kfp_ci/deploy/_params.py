"""Run parameters typed by the compiled pipeline's declared inputs (``root.inputDefinitions``).

``--param k=v`` values arrive as strings; defaults from ``[tool.kfp-ci]`` arrive typed. Both are checked
against the pipeline's inputs before anything is created on the server: an unknown name, a missing required
input or a value of the wrong type is a :class:`~kfp_ci.errors.UsageError` naming what to fix.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kfp_ci.errors import UsageError

__all__ = ["InputSpec", "pipeline_inputs", "resolve_parameters"]

# KFP IR parameter types (parameterType) and the older `type` spelling.
_ALIASES = {
    "STRING": "STRING",
    "NUMBER_INTEGER": "NUMBER_INTEGER",
    "INT": "NUMBER_INTEGER",
    "NUMBER_DOUBLE": "NUMBER_DOUBLE",
    "DOUBLE": "NUMBER_DOUBLE",
    "BOOLEAN": "BOOLEAN",
    "LIST": "LIST",
    "STRUCT": "STRUCT",
    "TASK_FINAL_STATUS": "TASK_FINAL_STATUS",
}
_HUMAN = {
    "STRING": "a string",
    "NUMBER_INTEGER": "an integer",
    "NUMBER_DOUBLE": "a number",
    "BOOLEAN": "true or false",
    "LIST": "a JSON list",
    "STRUCT": "a JSON object",
}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True, slots=True)
class InputSpec:
    name: str
    type: str
    default: Any = None
    has_default: bool = False
    optional: bool = False

    @property
    def required(self) -> bool:
        return not (self.has_default or self.optional)


def pipeline_inputs(spec: Mapping[str, Any]) -> dict[str, InputSpec]:
    """The pipeline's input parameters from its compiled IR (artifact inputs are not run parameters)."""
    root = spec.get("root") or {}
    params = ((root.get("inputDefinitions") or {}).get("parameters")) or {}
    inputs: dict[str, InputSpec] = {}
    for name, raw in params.items():
        raw = raw or {}
        kind = _ALIASES.get(str(raw.get("parameterType") or raw.get("type") or "STRING").upper(), "STRING")
        if kind == "TASK_FINAL_STATUS":
            continue
        inputs[name] = InputSpec(
            name=name,
            type=kind,
            default=raw.get("defaultValue"),
            has_default="defaultValue" in raw,
            optional=bool(raw.get("isOptional")),
        )
    return inputs


def _bad(name: str, value: Any, spec: InputSpec, source: str) -> UsageError:
    return UsageError(f"{source} {name}={value!r}: expected {_HUMAN.get(spec.type, spec.type)}")


def _from_text(name: str, text: str, spec: InputSpec) -> Any:
    source = "--param"
    if spec.type == "STRING":
        return text
    if spec.type == "NUMBER_INTEGER":
        try:
            return int(text.strip())
        except ValueError:
            raise _bad(name, text, spec, source) from None
    if spec.type == "NUMBER_DOUBLE":
        try:
            number = float(text.strip())
        except ValueError:
            raise _bad(name, text, spec, source) from None
        if not math.isfinite(number):
            raise _bad(name, text, spec, source)
        return number
    if spec.type == "BOOLEAN":
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise _bad(name, text, spec, source)
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise _bad(name, text, spec, source) from None
    return _from_typed(name, value, spec, source)


def _from_typed(name: str, value: Any, spec: InputSpec, source: str) -> Any:
    kind = spec.type
    if kind == "STRING" and isinstance(value, str):
        return value
    if kind == "NUMBER_INTEGER" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "NUMBER_DOUBLE" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind == "BOOLEAN" and isinstance(value, bool):
        return value
    if kind == "LIST" and isinstance(value, list):
        return value
    if kind == "STRUCT" and isinstance(value, dict):
        return value
    raise _bad(name, value, spec, source)


def resolve_parameters(
    inputs: Mapping[str, InputSpec],
    cli: Iterable[tuple[str, str]] = (),
    defaults: Mapping[str, Any] | None = None,
    *,
    pipeline: str = "the pipeline",
) -> dict[str, Any]:
    """Typed run parameters: ``defaults`` (config, typed) overridden by ``cli`` pairs (strings).

    Only the given values are returned; the server fills the pipeline's own defaults.
    """
    known = ", ".join(sorted(inputs)) or "none"
    result: dict[str, Any] = {}
    for name, value in (defaults or {}).items():
        if name not in inputs:
            raise UsageError(f"[tool.kfp-ci] parameters: {pipeline} has no input {name!r} (inputs: {known})")
        result[name] = _from_typed(name, value, inputs[name], "[tool.kfp-ci] parameter")
    seen: set[str] = set()
    for name, text in cli:
        if name not in inputs:
            raise UsageError(f"--param {name}: {pipeline} has no input {name!r} (inputs: {known})")
        if name in seen:
            raise UsageError(f"--param {name} given twice")
        seen.add(name)
        result[name] = _from_text(name, text, inputs[name])
    missing = [spec.name for spec in inputs.values() if spec.required and spec.name not in result]
    if missing:
        raise UsageError(
            f"{pipeline} needs a value for required input(s) {', '.join(missing)}: add --param "
            + " --param ".join(f"{m}=..." for m in missing)
        )
    return result
