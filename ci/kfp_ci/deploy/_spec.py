"""The canonical pipeline spec: what KFP keeps of an uploaded package, and its content hash.

KFP does not keep the uploaded file; it keeps the spec. ``promote`` and ``status --env all`` therefore compare
specs, not files: a spec fetched from a server (JSON: v2 ``pipeline_spec``, v1 the version's template) and a
compiled YAML file hash the same when they hold the same content. "The same canonical spec" means:

* the documents are the pipeline spec (the IR, first YAML document) and, when there is one, the platform spec
  (kfp-kubernetes config, the second document). A v2 server reports a package with a platform spec as
  ``{"pipeline_spec": ..., "platform_spec": ...}`` and one without as the bare IR; both are unwrapped to the same
  documents. When one side has a platform spec the other does not report, only the pipeline specs are compared
  (:func:`comparable`), and the difference is reported, never hidden;
* key order, YAML formatting and comments do not count (:func:`kfp_ci.deploy._versioning.content_hash`
  canonicalises parsed documents);
* a whole number is the same whether it is written ``1`` or ``1.0``: KFP stores the spec as a protobuf ``Struct``,
  whose numbers are doubles, and serves ``1.0`` back as ``1``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kfp_ci._yaml import load_docs
from kfp_ci.deploy._versioning import content_hash
from kfp_ci.errors import NotFound, UsageError

if TYPE_CHECKING:
    from kfp_ci.client import PipelineVersion
    from kfp_ci.deploy._api import Api

__all__ = ["comparable", "fetch_spec", "file_docs", "normalize", "server_docs", "spec_hash", "spec_yaml"]


def normalize(value: Any) -> Any:
    """``value`` with whole floats as ints (``1.0`` -> ``1``), recursively."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    return value


def file_docs(docs: Sequence[Any]) -> list[dict[str, Any]]:
    """The spec documents of a parsed compiled file: the IR and, if present and not empty, the platform spec."""
    found = [d for d in docs if isinstance(d, Mapping) and d]
    return [dict(d) for d in found[:2]]


def server_docs(spec: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The spec documents of a version's ``pipeline_spec`` as a v2 server returns it."""
    if not spec:
        return []
    if "pipeline_spec" in spec and "root" not in spec:
        docs = [spec.get("pipeline_spec"), spec.get("platform_spec")]
        return [dict(d) for d in docs if isinstance(d, Mapping) and d]
    return [dict(spec)]


def comparable(left: Sequence[Any], right: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """The documents of two specs to compare: both, or only the pipeline specs when one lacks a platform spec."""
    if len(left) != len(right):
        count = min(len(left), len(right), 1)
        return list(left[:count]), list(right[:count])
    return list(left), list(right)


def spec_hash(docs: Sequence[Any]) -> str:
    """The canonical content hash of spec documents (see the module docstring)."""
    return content_hash(b"", [normalize(d) for d in docs])


def spec_yaml(docs: Sequence[Any]) -> bytes:
    """The documents as a multi-document YAML package (what is uploaded on promotion)."""
    import yaml

    return yaml.safe_dump_all(list(docs), sort_keys=False, allow_unicode=True).encode("utf-8")


def fetch_spec(api: Api, version: PipelineVersion) -> list[dict[str, Any]]:
    """The spec documents the server keeps for ``version`` (v2: ``pipeline_spec``; v1: the version's template)."""
    client = api.client
    if client.server.api != "v2beta1":
        return _v1_template(api, version)
    spec = version.pipeline_spec
    if not spec:
        spec = api.get_version(version.pipeline_id, version.id).pipeline_spec
    docs = server_docs(spec)
    if not docs:
        raise NotFound(404, f"the server returned no pipeline spec for version '{version.name}' ({version.id})")
    return docs


def _v1_template(api: Api, version: PipelineVersion) -> list[dict[str, Any]]:
    """KFP 1.x: ``GET /apis/v1beta1/pipeline_versions/{id}/templates`` -> ``{"template": "<YAML>"}``."""
    template = api.client.get_pipeline_version_template(version.id)
    if not template.strip():
        raise NotFound(404, f"the server returned no template for version '{version.name}' ({version.id})")
    try:
        docs = file_docs(load_docs(template))
    except Exception as exc:  # a server bug, not user input
        raise UsageError(f"the template of version '{version.name}' is not YAML: {exc}") from None
    return docs
