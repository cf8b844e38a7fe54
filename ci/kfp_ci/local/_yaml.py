"""YAML for the server: libyaml when PyYAML has it (several times faster than the pure-Python classes on a
compiled pipeline), the safe loader and dumper either way."""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["YAML_LOADER", "dump_yaml", "load_docs"]

YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def load_docs(content: bytes | str) -> list[Any]:
    """The non-empty YAML documents of ``content``."""
    return [d for d in yaml.load_all(content, Loader=YAML_LOADER) if d is not None]


def dump_yaml(data: Any) -> str:
    """``data`` as YAML, keys in their order."""
    return str(yaml.dump(data, Dumper=_DUMPER, sort_keys=False))
