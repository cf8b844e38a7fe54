"""YAML for compiled pipeline packages: libyaml when PyYAML has it (several times faster than the pure-Python
classes on a compiled pipeline), the safe loader and dumper either way. One place for the client, deploy, the
pipeline diff and the embedded server."""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["DUMPER", "LOADER", "dump_yaml", "load_docs"]

LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def load_docs(content: bytes | str) -> list[Any]:
    """The non-empty YAML documents of ``content`` (bytes are read as YAML's encodings allow; decode first to insist
    on UTF-8)."""
    return [d for d in yaml.load_all(content, Loader=LOADER) if d is not None]


def dump_yaml(data: Any) -> str:
    """``data`` as YAML, keys in their order."""
    return str(yaml.dump(data, Dumper=DUMPER, sort_keys=False))
