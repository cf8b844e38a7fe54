"""Field values of requests and answers: RFC 3339 timestamps, int64 and enum fields, unknown-field checks and
protojson's omission of unpopulated fields."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from kfp_ci.local._http import HttpError, bad


def ts(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(int(t), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(value: Any, field: str) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        text = str(value).replace("Z", "+00:00")
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.timestamp()
    except ValueError:
        raise bad(f"{field} is not an RFC 3339 timestamp: {value!r}") from None


def clean(value: dict[str, Any]) -> dict[str, Any]:
    """protojson with EmitUnpopulated=false: drop None, '', 0, False, empty lists and maps (recursively)."""
    out: dict[str, Any] = _clean(value)
    return out


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            v = _clean(v)
            if v in (None, "", [], {}) or v is False or (type(v) in (int, float) and v == 0):
                continue
            out[k] = v
        return out
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def check_fields(body: Any, allowed: set[str], message: str) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise bad(f"{message}: the request body must be a JSON object")
    camel = {re.sub(r"_([a-z])", lambda m: m.group(1).upper(), a): a for a in allowed}
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key in allowed:
            out[key] = value
        elif key in camel:
            out[camel[key]] = value
        else:
            raise HttpError(3, f'proto: ({message}) unknown field "{key}"',
                            user_message=f'unknown field "{key}" in {message}')
    return out


def int64(value: Any, field: str) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise bad(f"{field} must be an integer, got {value!r}") from None


def enum(value: Any, names: dict[str, int], field: str) -> str:
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        for name, number in names.items():
            if number == int(value):
                return name
        raise bad(f"unknown {field} {value}")
    if value in names:
        return str(value)
    raise bad(f"unknown {field} {value!r}")
