"""Read a pipeline package the way KFP's API server does, and say what it holds.

KFP's upload (``ReadPipelineFile`` in ``backend/src/apiserver/server/util.go``) decides the container by the file
name, then by the first bytes: a name ending in ``.yaml``/``.yml``/``.json`` is the pipeline itself; otherwise ``PK``
is a zip and ``1F 8B`` a gzipped tar, from which it takes the member named ``pipeline.yaml`` (or the first one).
The template (``backend/src/apiserver/template/template.go``) is then an Argo ``Workflow`` (KFP v1) when the first
document says ``apiVersion: argoproj.io/...`` and ``kind: Workflow``, else a v2 ``PipelineSpec`` found among the
YAML documents (``pipelineInfo.name`` and ``root`` set, only PipelineSpec fields), with at most one platform-spec
document (``platforms``) beside it.

kfp-ci reads the same packages, plus the ``PipelineJob`` files TFX's ``KubeflowV2DagRunner`` and Vertex AI tooling
write (``displayName``, ``pipelineSpec``, ``runtimeConfig``, ``labels``), which KFP's server rejects: it unwraps
``pipelineSpec``. It is stricter where the server would guess: an archive must hold ``pipeline.yaml`` or exactly one
pipeline file. What kfp-ci uploads is the pipeline file itself (:attr:`Package.content`), never the archive, so
every KFP version reads it alike; what it hashes is the parsed documents (:attr:`Package.docs`), so re-packing the
same pipeline into another container changes nothing.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from kfp_ci._yaml import load_docs
from kfp_ci.errors import UsageError

__all__ = [
    "MAX_PACKAGE",
    "PACKAGE_SUFFIXES",
    "Package",
    "package_stem",
    "parse_package",
    "read_package",
    "without_clock",
]

MAX_PACKAGE = 32 << 20
"""KFP's upload limit (32 MiB), for the file and for the pipeline file inside an archive."""
PACKAGE_SUFFIXES = (".yaml", ".yml", ".json", ".zip", ".tar.gz", ".tgz")
_PLAIN = (".yaml", ".yml", ".json")
Kind = Literal["v2", "argo", "pipeline-job"]
Container = Literal["yaml", "json", "zip", "tar.gz"]

CLOCK_ANNOTATION = "pipelines.kubeflow.org/pipeline_compilation_time"
"""What kfp 1.8 (and TFX's KubeflowDagRunner) stamp with the clock into every Argo workflow: not content."""


def without_clock(doc: Any) -> Any:
    """``doc`` without kfp 1.8's compile-time stamp (a copy; any other document is returned as it is). Content
    comparisons (deploy's content hash, a build's ``--check``) see a recompiled kfp 1.8 pipeline as the same."""
    if not isinstance(doc, dict) or doc.get("kind") != "Workflow":
        return doc
    metadata = doc.get("metadata")
    if not isinstance(metadata, dict):
        return doc
    annotations = metadata.get("annotations")
    if not isinstance(annotations, dict) or CLOCK_ANNOTATION not in annotations:
        return doc
    rest = {k: v for k, v in annotations.items() if k != CLOCK_ANNOTATION}
    return {**doc, "metadata": {**metadata, "annotations": rest}}


# PipelineSpec's fields (api/v2alpha1/pipeline_spec.proto) in their JSON and proto spellings: the server parses a
# document with protojson, which refuses any other field.
_SPEC_FIELDS = {
    "pipelineInfo", "pipeline_info", "deploymentSpec", "deployment_spec", "sdkVersion", "sdk_version",
    "schemaVersion", "schema_version", "components", "root", "defaultPipelineRoot", "default_pipeline_root",
}
_SCHEMA_VERSION = "2.1.0"
_ARGO_VERSION = "argoproj.io/v1alpha1"
_DESCRIBE = {"v2": "KFP v2 pipeline spec", "argo": "Argo workflow (KFP v1)",
             "pipeline-job": "PipelineJob (TFX/Vertex) holding a KFP v2 pipeline spec"}


@dataclass(frozen=True, slots=True)
class Package:
    """A pipeline package, read and recognised; everything deploy needs without reading it again."""

    path: Path
    kind: Kind
    container: Container
    content: bytes
    """The pipeline file to upload: the file itself, the archive member, or a PipelineJob's unwrapped spec."""
    docs: tuple[Any, ...]
    """The parsed documents of :attr:`content` (what the content hash covers)."""
    spec: Mapping[str, Any]
    """The pipeline spec (v2) or the Workflow (Argo)."""
    member: str | None = None
    """The file inside the archive."""
    platform_spec: Mapping[str, Any] | None = None
    job_parameters: Mapping[str, Any] = field(default_factory=dict)
    """A PipelineJob's ``runtimeConfig`` parameter values (default run parameters)."""
    job_display_name: str | None = None

    @property
    def rewritten(self) -> bool:
        """Whether :attr:`content` differs from the file's bytes (so deploy must upload a file of its own)."""
        return self.container in ("zip", "tar.gz") or self.kind == "pipeline-job"

    @property
    def upload_name(self) -> str:
        """A file name for :attr:`content` that tells the server its format."""
        if self.kind == "pipeline-job":
            return "pipeline.json"
        if self.member is not None:
            name = Path(self.member).name
            return name if name.lower().endswith(_PLAIN) else "pipeline.yaml"
        return self.path.name

    @property
    def pipeline_name(self) -> str:
        """``pipelineInfo.name`` (v2), the name kfp 1.8 recorded (Argo), else the file name without suffix."""
        if self.kind == "argo":
            recorded = _argo_annotation(self.spec).get("name")
            metadata = self.spec.get("metadata") or {}
            generated = str(metadata.get("generateName") or "").rstrip("-") if isinstance(metadata, dict) else ""
            named = metadata.get("name") if isinstance(metadata, dict) else None
            return str(recorded or generated or named or package_stem(self.path))
        info = self.spec.get("pipelineInfo") or self.spec.get("pipeline_info") or {}
        return str(info.get("name") or package_stem(self.path))

    @property
    def pipeline_description(self) -> str | None:
        if self.kind == "argo":
            value = _argo_annotation(self.spec).get("description")
        else:
            info = self.spec.get("pipelineInfo") or self.spec.get("pipeline_info") or {}
            value = info.get("description")
        return str(value) if value else None

    def describe(self) -> str:
        """What was found, e.g. ``Argo workflow (KFP v1) in pipeline.tar.gz``."""
        what = _DESCRIBE[self.kind]
        if self.platform_spec is not None:
            what += " with a platform spec"
        where = self.path.name
        if self.member is not None:
            where += f" ({self.member})"
        return f"{what} in {where}"


def package_stem(path: Path) -> str:
    """The file name without its package suffix (``pipeline.tar.gz`` -> ``pipeline``)."""
    name = path.name
    for suffix in PACKAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or name
    return path.stem


def read_package(path: Path) -> Package:
    """Read and recognise the package at ``path``; a :class:`UsageError` naming what is wrong otherwise."""
    try:
        size = path.stat().st_size
        if size > MAX_PACKAGE:
            raise UsageError(f"{path} is {size >> 20} MiB: KFP accepts at most 32 MiB")
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not a pipeline package") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_package(data, path)


def parse_package(data: bytes, path: Path) -> Package:
    """Recognise ``data`` (the bytes of the file at ``path``; the name decides like on the server)."""
    lower = path.name.lower()
    member: str | None = None
    container: Container
    if lower.endswith(_PLAIN):
        container = "json" if lower.endswith(".json") else "yaml"
        content = data
    elif data[:2] == b"PK":
        container = "zip"
        member, content = _from_zip(data, path)
    elif data[:2] == b"\x1f\x8b":
        container = "tar.gz"
        member, content = _from_tar(data, path)
    else:
        raise UsageError(f"{path} is not a pipeline package: KFP takes a .yaml, .yml or .json file, or a .zip or "
                         ".tar.gz archive holding one (this file is neither by name nor by content)")
    where = f"{path} ({member})" if member else str(path)
    docs = _parse(content, where, as_json=(member or path.name).lower().endswith(".json"))
    return _recognise(path, container, member, content, docs, where)


# ------------------------------------------------------------------------------------------- archives
def _pick(names: list[str], path: Path, what: str) -> str:
    """The archive member KFP would read, when that is not a guess: ``pipeline.yaml``, or the only file."""
    if not names:
        raise UsageError(f"{path} is an empty {what}: it must hold the pipeline file (pipeline.yaml)")
    for name in names:
        if name.removeprefix("./") == "pipeline.yaml":
            return name
    if len(names) > 1:
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise UsageError(f"{path} holds {len(names)} files ({shown}): a pipeline {what} must hold pipeline.yaml or "
                         "exactly one pipeline file")
    if not names[0].lower().endswith(_PLAIN):
        raise UsageError(f"{path} holds {names[0]}, not a pipeline file: the file in the {what} must be "
                         "pipeline.yaml (a .yaml, .yml or .json file)")
    return names[0]


def _from_zip(data: bytes, path: Path) -> tuple[str, bytes]:
    import zipfile  # only archives pay for it

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
            name = _pick([i.filename for i in infos], path, "zip archive")
            info = next(i for i in infos if i.filename == name)
            if info.file_size > MAX_PACKAGE:
                raise UsageError(f"{path}: {name} is {info.file_size >> 20} MiB unpacked; KFP accepts at most 32 MiB")
            with archive.open(info) as fh:
                content = fh.read(MAX_PACKAGE + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError) as exc:
        raise UsageError(f"{path} is not a valid zip archive: {exc}") from None
    if len(content) > MAX_PACKAGE:
        raise UsageError(f"{path}: {name} is over 32 MiB unpacked; KFP accepts at most 32 MiB")
    return name, content


def _from_tar(data: bytes, path: Path) -> tuple[str, bytes]:
    import tarfile  # only archives pay for it

    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            members = [m for m in archive.getmembers() if m.isfile()]
            name = _pick([m.name for m in members], path, "tar.gz archive")
            member = next(m for m in members if m.name == name)
            if member.size > MAX_PACKAGE:
                raise UsageError(f"{path}: {name} is {member.size >> 20} MiB unpacked; KFP accepts at most 32 MiB")
            handle = archive.extractfile(member)
            content = handle.read() if handle is not None else b""
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:  # zlib errors arrive as OSError/EOFError
        raise UsageError(f"{path} is not a valid tar.gz archive: {exc}") from None
    return name, content


# ---------------------------------------------------------------------------------------- documents
def _parse(content: bytes, where: str, *, as_json: bool) -> list[Any]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{where} is not a pipeline: it is not UTF-8 text") from None
    if not text.strip():
        raise UsageError(f"{where} is empty: it must hold a compiled pipeline")
    if as_json:
        try:
            return [json.loads(text)]
        except ValueError as exc:
            raise UsageError(f"{where} is not valid JSON: {exc}") from None
    try:
        return load_docs(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"{where} is not valid YAML: {' '.join(str(exc).split())}") from None


def _is_pipeline_spec(doc: Any) -> bool:
    if not isinstance(doc, dict) or not set(doc) <= _SPEC_FIELDS:
        return False
    info = doc.get("pipelineInfo", doc.get("pipeline_info"))
    return isinstance(info, dict) and bool(info.get("name")) and isinstance(doc.get("root"), dict)


def _is_platform_spec(doc: Any) -> bool:
    return (isinstance(doc, dict) and set(doc) == {"platforms"} and isinstance(doc["platforms"], dict)
            and "kubernetes" in doc["platforms"])


def _is_argo(doc: Any) -> bool:
    return (isinstance(doc, dict) and str(doc.get("apiVersion") or "").startswith("argoproj.io/")
            and doc.get("kind") == "Workflow")


def _recognise(path: Path, container: Container, member: str | None, content: bytes, docs: list[Any],
               where: str) -> Package:
    if not docs:
        raise UsageError(f"{where} is empty: it must hold a compiled pipeline")
    if _is_argo(docs[0]):
        if docs[0].get("apiVersion") != _ARGO_VERSION:
            raise UsageError(f"{where} is an Argo workflow of apiVersion {docs[0].get('apiVersion')}; KFP takes "
                             f"{_ARGO_VERSION}")
        return Package(path, "argo", container, content, tuple(docs), docs[0], member)
    specs = [d for d in docs if _is_pipeline_spec(d)]
    if specs:
        return _v2(path, container, member, content, docs, specs, where)
    if len(docs) == 1 and isinstance(docs[0], dict) and "pipelineSpec" in docs[0]:
        return _pipeline_job(path, container, member, docs[0], where)
    raise UsageError(f"{where} is not a KFP pipeline: expected a v2 pipeline spec (pipelineInfo.name and root), an "
                     "Argo Workflow (KFP v1) or a PipelineJob (pipelineSpec); compile it with kfp-ci compile")


def _v2(path: Path, container: Container, member: str | None, content: bytes, docs: list[Any],
        specs: list[dict[str, Any]], where: str) -> Package:
    if len(specs) > 1:
        raise UsageError(f"{where} holds {len(specs)} pipeline specs; KFP takes exactly one per package")
    spec = specs[0]
    schema = spec.get("schemaVersion", spec.get("schema_version"))
    if schema != _SCHEMA_VERSION:
        raise UsageError(f"{where}: KFP only supports pipeline schema version {_SCHEMA_VERSION}, this spec has "
                         f"{schema!r}; compile it with kfp 2.x")
    platforms = [d for d in docs if _is_platform_spec(d)]
    if len(platforms) > 1:
        raise UsageError(f"{where} holds {len(platforms)} platform specs; KFP takes at most one")
    return Package(path, "v2", container, content, tuple(docs), spec, member,
                   platform_spec=platforms[0] if platforms else None)


def _pipeline_job(path: Path, container: Container, member: str | None, job: dict[str, Any],
                  where: str) -> Package:
    spec = job.get("pipelineSpec")
    if not _is_pipeline_spec(spec):
        raise UsageError(f"{where} is a PipelineJob whose pipelineSpec is not a KFP v2 pipeline spec "
                         "(pipelineInfo.name and root)")
    assert isinstance(spec, dict)
    schema = spec.get("schemaVersion", spec.get("schema_version"))
    if schema != _SCHEMA_VERSION:
        raise UsageError(f"{where}: KFP only supports pipeline schema version {_SCHEMA_VERSION}, the PipelineJob's "
                         f"pipelineSpec has {schema!r} (TFX: KubeflowV2DagRunnerConfig(use_pipeline_spec_2_1=True))")
    runtime = job.get("runtimeConfig") or {}
    if not isinstance(runtime, dict):
        raise UsageError(f"{where}: runtimeConfig must be an object")
    values = runtime.get("parameterValues") or {}
    legacy = runtime.get("parameters") or {}  # the deprecated map<string, Value> ({"intValue": "3"}, ...)
    if not isinstance(values, dict) or not isinstance(legacy, dict):
        raise UsageError(f"{where}: runtimeConfig.parameterValues must be an object of parameter values")
    parameters = {name: _legacy_value(name, value, where) for name, value in legacy.items()}
    parameters.update(values)
    content = (json.dumps(spec, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    display = job.get("displayName")
    return Package(path, "pipeline-job", container, content, (spec,), spec, member,
                   job_parameters=parameters, job_display_name=str(display) if display else None)


def _legacy_value(name: str, value: Any, where: str) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        (kind, raw), = value.items()
        try:
            if kind == "intValue":
                return int(raw)
            if kind == "doubleValue":
                return float(raw)
            if kind == "stringValue":
                return str(raw)
        except (TypeError, ValueError):
            pass
    raise UsageError(f"{where}: runtimeConfig.parameters.{name} is not an intValue, doubleValue or stringValue")


def _argo_annotation(workflow: Mapping[str, Any]) -> dict[str, Any]:
    """kfp 1.8's ``pipelines.kubeflow.org/pipeline_spec`` annotation (name, description, inputs), if any."""
    metadata = workflow.get("metadata") or {}
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    raw = annotations.get("pipelines.kubeflow.org/pipeline_spec") if isinstance(annotations, dict) else None
    try:
        parsed = json.loads(raw) if isinstance(raw, str) else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
