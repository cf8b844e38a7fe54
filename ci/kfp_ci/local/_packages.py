"""Uploaded pipeline packages (YAML, JSON, zip, tar.gz) and the typed values of a run's parameters."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from collections.abc import Mapping
from typing import Any

import yaml

from kfp_ci._yaml import load_docs
from kfp_ci.local._http import HttpError, bad

MAX_PACKAGE = 32 << 20


def read_package(content: bytes, filename: str) -> tuple[bytes, dict[str, Any]]:
    """Normalise an uploaded package to YAML bytes + its first document (zip / tar.gz unpacked)."""
    if len(content) > MAX_PACKAGE:
        raise HttpError(3, "File size too large. Maximum supported size: 32MiB", kind="upload")
    lower = filename.lower()
    if not lower.endswith((".yaml", ".yml", ".json")):
        inner: bytes | None = None
        if content[:2] == b"PK":
            with zipfile.ZipFile(io.BytesIO(content)) as zf:
                name = _member(zf.namelist())
                inner = zf.read(name) if name else None
        elif content[:2] == b"\x1f\x8b":
            with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as tf:
                members = tf.getmembers()
                name = _member([m.name for m in members])
                extracted = tf.extractfile(name) if name else None
                inner = extracted.read() if extracted else None
        if inner is None:
            raise HttpError(3, "Unexpected pipeline file format. Support .zip, .tar.gz, .json or YAML",
                            kind="upload")
        content = inner
    try:
        docs = load_docs(content)
    except yaml.YAMLError as exc:
        raise HttpError(3, f"Failed to parse the pipeline spec: {str(exc).splitlines()[0]}", kind="upload") from None
    if not docs or not isinstance(docs[0], dict):
        raise HttpError(3, "Failed to parse the pipeline spec: the file is empty or not a YAML mapping", kind="upload")
    return content, next((d for d in docs if isinstance(d, dict) and "root" in d), docs[0])


def _member(names: list[str]) -> str | None:
    """KFP's choice in an archive: the member named ``pipeline.yaml``, else the first one if it is YAML."""
    if "pipeline.yaml" in names:
        return "pipeline.yaml"
    return names[0] if names and names[0].endswith((".yaml", ".yml")) else None


def spec_parameters(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Input parameters of an IR pipeline: name -> {type, default}."""
    params = ((spec.get("root") or {}).get("inputDefinitions") or {}).get("parameters") or {}
    return {k: v for k, v in params.items() if isinstance(v, dict)}


def coerce_params(spec: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """Typed values for the pipeline's parameters (v1 clients send strings)."""
    declared = spec_parameters(spec)
    out: dict[str, Any] = {}
    for name, value in given.items():
        kind = str((declared.get(name) or {}).get("parameterType", ""))
        try:
            if kind == "NUMBER_INTEGER":
                out[name] = int(float(value))
            elif kind == "NUMBER_DOUBLE":
                out[name] = float(value)
            elif kind == "BOOLEAN":
                out[name] = value if isinstance(value, bool) else str(value).lower() in ("true", "1")
            elif kind in ("LIST", "STRUCT") and isinstance(value, str):
                out[name] = json.loads(value)
            elif kind == "STRING":
                out[name] = value if isinstance(value, str) else json.dumps(value)
            else:
                out[name] = value
        except (ValueError, TypeError):
            raise bad(f"parameter {name} expects {kind}, got {value!r}") from None
    return out
