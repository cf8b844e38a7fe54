"""What ``kfp-ci compile --check`` compares: a compiled file's content, not the parts kfp stamps or shuffles.

Two compiles of the same source with the same kfp differ in exactly two places, both ignored here:

* kfp 1.8 stamps the clock into ``metadata.annotations["pipelines.kubeflow.org/pipeline_compilation_time"]``
  (kfp 2 stamps no time);
* kfp 2 writes the defaults of ``dict`` (and ``list`` of ``dict``) parameters into the YAML header comment
  (``#    cfg: dict [Default: {...}]``) in the key order its protobuf runtime returns them, which the upb
  extension varies from run to run; the defaults are compared as values, whatever their key order.

* kfp 2 embeds a component's ``embedded_artifact_path`` as a gzipped tar archive in base64
  (``__KFP_EMBEDDED_ARCHIVE_B64 = '...'``): gzip stamps the clock into its header, and tar records each file's
  modification time (on a fresh clone: the checkout time) and owner. The archive is compared on what it holds:
  each member's name, type, link target, executable bit and bytes.

The SDK version stamp (kfp 2's ``sdkVersion: kfp-X``, kfp 1.8's ``pipelines.kubeflow.org/kfp_sdk_version``)
is compared too, unless asked otherwise (``--ignore-sdk-version``); :func:`sdk_version_of` reads it.
"""

from __future__ import annotations

import ast
import re
from typing import Any

__all__ = ["canonical", "sdk_version_of"]

_COMPILATION_TIME = re.compile(
    rb"""(["']?pipelines\.kubeflow\.org/pipeline_compilation_time["']?\s*:\s*)("[^"\n]*"|'[^'\n]*'|[^\s,}\n]*)""")
_ARCHIVE = re.compile(rb"(__KFP_EMBEDDED_ARCHIVE_B64 = ')([A-Za-z0-9+/=]+)(')")
_DEFAULT = re.compile(rb"^(#    \S+: \S+ \[Default: )(.*)(\])$")
_SDK_V2 = re.compile(rb"""(["']?sdkVersion["']?\s*:\s*["']?kfp-)([0-9][\w.+!-]*)""")
_SDK_V1 = re.compile(rb"""(["']?pipelines\.kubeflow\.org/kfp_sdk_version["']?\s*:\s*["']?)([0-9][\w.+!-]*)""")


def sdk_version_of(data: bytes) -> str | None:
    """The kfp version a compiled file says compiled it, if it says so."""
    match = _SDK_V2.search(data) or _SDK_V1.search(data)
    return match.group(2).decode("ascii", "replace") if match else None


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value, key=repr)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _canonical_header(data: bytes) -> bytes:
    """The header comment's parameter defaults with their dict keys sorted (the rest byte for byte)."""
    lines = data.split(b"\n")
    for index, line in enumerate(lines):
        if not line.startswith(b"#"):
            break  # the header comment is the file's first lines
        match = _DEFAULT.match(line)
        if match is None or b"{" not in match.group(2):
            continue
        try:
            value = ast.literal_eval(match.group(2).decode("utf-8"))
        except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError):
            continue
        lines[index] = match.group(1) + repr(_sorted(value)).encode("utf-8") + match.group(3)
    return b"\n".join(lines)


def _archive_content(match: re.Match[bytes]) -> bytes:
    """An embedded archive as the digest of its members' names, types, link targets, executable bits and bytes."""
    import base64
    import gzip
    import hashlib
    import io
    import tarfile

    try:
        raw = gzip.decompress(base64.b64decode(match.group(2), validate=True))
        members = []
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for member in tar.getmembers():
                content = b""
                if member.isfile():
                    handle = tar.extractfile(member)
                    content = handle.read() if handle is not None else b""
                members.append((member.name, member.type.decode("latin-1"), member.linkname,
                                bool(member.mode & 0o111) and member.isfile(), hashlib.sha256(content).hexdigest()))
    except (ValueError, OSError, EOFError, tarfile.TarError):
        return match.group(0)
    digest = hashlib.sha256(repr(sorted(members)).encode()).hexdigest()
    return match.group(1) + f"<archive content sha256:{digest}>".encode() + match.group(3)


def canonical(data: bytes, *, ignore_sdk_version: bool = False) -> bytes:
    """``data`` without what differs between two compiles of the same source (see the module's docstring)."""
    data = _COMPILATION_TIME.sub(rb"\1<compilation time>", data)
    if b"__KFP_EMBEDDED_ARCHIVE_B64" in data:
        data = _ARCHIVE.sub(_archive_content, data)
    if data.startswith(b"#") and b"[Default: " in data:
        data = _canonical_header(data)
    if ignore_sdk_version:
        data = _SDK_V1.sub(rb"\1<sdk version>", _SDK_V2.sub(rb"\1<sdk version>", data))
    return data
