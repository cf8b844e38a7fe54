"""Uploaded pipeline packages (YAML, JSON, zip, tar.gz) and the typed values of a run's parameters."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any

import yaml

from kfp_ci._yaml import LOADER, load_docs
from kfp_ci.local._http import HttpError, bad, deeper_than

MAX_PACKAGE = 32 << 20
MAX_UNPACKED = MAX_PACKAGE  # what an archive may inflate to, all members read together
MAX_YAML_NODES = 200_000  # a document's nodes with every alias expanded (a compiled pipeline has thousands)
MAX_DEPTH = 200  # nesting of mappings and sequences (a compiled pipeline nests about 15 deep)
_SUFFIXES = (".yaml", ".yml", ".json")


def _upload_error(message: str, kind: str = "upload") -> HttpError:
    if kind != "upload":
        return bad(message)
    return HttpError(3, message, kind="upload")


def read_package(content: bytes, filename: str) -> tuple[bytes, dict[str, Any]]:
    """Normalise an uploaded package to YAML bytes + its first document (zip / tar.gz unpacked).

    Bounded: the upload (32 MiB, KFP's limit), what an archive inflates to (32 MiB), and the YAML document with its
    aliases expanded (200,000 nodes, 200 levels deep); past a bound the answer is a 400, before the work is done.
    """
    if len(content) > MAX_PACKAGE:
        raise HttpError(3, "File size too large. Maximum supported size: 32MiB", kind="upload")
    lower = filename.lower()
    if not lower.endswith(_SUFFIXES):
        inner: bytes | None = None
        try:
            if content[:2] == b"PK":
                inner = _from_zip(content)
            elif content[:2] == b"\x1f\x8b":
                inner = _from_tar_gz(content)
        except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError, zlib.error, ValueError) as exc:
            raise _upload_error(f"Failed to read the pipeline archive: {type(exc).__name__}: "
                                f"{' '.join(str(exc).split())[:200]}") from None
        if inner is None:
            raise HttpError(3, "Unexpected pipeline file format. Support .zip, .tar.gz, .json or YAML",
                            kind="upload")
        content = inner
    docs = load_bounded(content)
    if not docs or not isinstance(docs[0], dict):
        raise HttpError(3, "Failed to parse the pipeline spec: the file is empty or not a YAML mapping", kind="upload")
    return content, next((d for d in docs if isinstance(d, dict) and "root" in d), docs[0])


def _member(names: list[str]) -> str | None:
    """KFP's choice in an archive: the member named ``pipeline.yaml``, else the first one if it is YAML."""
    if "pipeline.yaml" in names:
        return "pipeline.yaml"
    return names[0] if names and names[0].endswith((".yaml", ".yml")) else None


def _too_big(what: str) -> HttpError:
    return _upload_error(f"Failed to read the pipeline archive: {what} inflates to more than "
                         f"{MAX_UNPACKED >> 20} MiB")


def _from_zip(content: bytes) -> bytes | None:
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        infos = zf.infolist()
        if sum(i.file_size for i in infos) > MAX_UNPACKED:
            raise _too_big("the zip file")
        files = {i.filename: i for i in infos if not i.is_dir()}
        name = _member(list(files))
        if name is None:
            return None
        with zf.open(files[name]) as member:  # reads at most the declared size (checked above)
            data = member.read(MAX_UNPACKED + 1)
        if len(data) > MAX_UNPACKED:
            raise _too_big("the zip file")
        return data


class _Bounded(io.RawIOBase):
    """A read-only stream over ``inner`` that fails once more than ``limit`` bytes were read."""

    def __init__(self, inner: Any, limit: int) -> None:
        self.inner = inner
        self.left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(min(len(buffer), self.left + 1))
        self.left -= len(data)
        if self.left < 0:
            raise _too_big("the .tar.gz file")
        buffer[:len(data)] = data
        return len(data)


def _from_tar_gz(content: bytes) -> bytes | None:
    gz = gzip.GzipFile(fileobj=io.BytesIO(content))
    stream = io.BufferedReader(_Bounded(gz, MAX_UNPACKED))
    first: bytes | None = None
    with tarfile.open(fileobj=stream, mode="r|") as tf:  # a stream: members in order, read within the bound
        for index, member in enumerate(m for m in tf if m.isfile()):
            if member.size > MAX_UNPACKED:
                raise _too_big("the .tar.gz file")
            if member.name == "pipeline.yaml" or index == 0:
                extracted = tf.extractfile(member)
                data = extracted.read() if extracted else None
                if member.name == "pipeline.yaml":
                    return data
                if _member([member.name]) is not None:
                    first = data
    return first


def load_bounded(content: bytes | str, kind: str = "upload") -> list[Any]:
    """The YAML documents of ``content``, refused (400) when an alias bomb or nesting would expand them past the
    bounds. Documents without anchors (every compiled pipeline) are loaded directly."""
    size = content.count("\n") + content.count(",") if isinstance(content, str) else (
        content.count(b"\n") + content.count(b","))
    if size > MAX_YAML_NODES:
        raise _upload_error(f"Failed to parse the pipeline spec: more than {MAX_YAML_NODES:,} lines and items "
                            "(a compiled pipeline has thousands)", kind)
    try:
        if ("&" in content) if isinstance(content, str) else (b"&" in content):
            nodes = list(yaml.compose_all(content, Loader=LOADER))
            for node in nodes:
                problem = _expansion_problem(node)
                if problem:
                    raise _upload_error(f"Failed to parse the pipeline spec: {problem}", kind)
        docs = load_docs(content)
    except yaml.YAMLError as exc:
        raise _upload_error(f"Failed to parse the pipeline spec: {str(exc).splitlines()[0]}", kind) from None
    except RecursionError:
        docs = [None]
    if any(doc is None or deeper_than(doc, MAX_DEPTH) for doc in docs):
        raise _upload_error(f"Failed to parse the pipeline spec: nested more than {MAX_DEPTH} levels deep", kind)
    return docs


def _expansion_problem(root: yaml.Node) -> str:
    """Why the node graph ``root`` is too big once its aliases are expanded ('' when it is not); no recursion."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        if done:
            on_path.discard(key)
            total = 1 + sum(sizes[id(c)] for c in children)
            sizes[key] = min(total, MAX_YAML_NODES + 1)
            continue
        if key in sizes:
            continue
        if key in on_path:
            return "an alias refers to a node that contains it (a recursive document)"
        if depth > MAX_DEPTH:
            return f"nested more than {MAX_DEPTH} levels deep"
        on_path.add(key)
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in children if id(c) not in sizes)
    if sizes[id(root)] > MAX_YAML_NODES:
        return f"its aliases expand to more than {MAX_YAML_NODES:,} nodes"
    return ""


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
