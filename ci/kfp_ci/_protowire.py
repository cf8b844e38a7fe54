"""A minimal protobuf wire-format codec and gRPC-web framing, enough for ML Metadata's messages.

No protobuf dependency: messages are built with :class:`Writer` and read with :func:`fields`, field numbers
taken from ``ml_metadata/proto/metadata_store.proto`` and ``metadata_store_service.proto`` (see
``docs/metrics.md``). Decoding accepts packed and unpacked repeated scalars, as every protobuf parser must.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from urllib.parse import unquote

__all__ = [
    "GRPC_WEB_CONTENT_TYPE",
    "GrpcStatusError",
    "ProtoError",
    "Writer",
    "decode_varint",
    "encode_varint",
    "fields",
    "first",
    "frame",
    "grpc_web_body",
    "parse_grpc_web",
    "repeated_varints",
    "to_double",
    "to_signed",
    "trailer",
]

GRPC_WEB_CONTENT_TYPE = "application/grpc-web+proto"

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


class ProtoError(ValueError):
    """Bytes that are not a valid protobuf message or gRPC-web body."""


class GrpcStatusError(Exception):
    """A gRPC call answered a non-OK status (``code``, ``message``)."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"gRPC status {code}: {message}")


def encode_varint(value: int) -> bytes:
    """Base-128 varint; negative numbers as their 64-bit two's complement (int64 semantics)."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtoError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtoError("varint longer than 10 bytes")


def to_signed(value: int) -> int:
    """An int64 field's value from its unsigned varint."""
    return value - (1 << 64) if value >= 1 << 63 else value


def to_double(value: int) -> float:
    """A ``double`` field's value from its fixed64 bits."""
    result: float = struct.unpack("<d", value.to_bytes(8, "little"))[0]
    return result


class Writer:
    """Builds one message: call the field methods in field order, then ``bytes(writer)``."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def _key(self, number: int, wire_type: int) -> None:
        self._buf += encode_varint(number << 3 | wire_type)

    def varint(self, number: int, value: int | bool | None) -> Writer:
        if value is not None:
            self._key(number, VARINT)
            self._buf += encode_varint(int(value))
        return self

    def repeated_varint(self, number: int, values: Iterable[int]) -> Writer:
        """Unpacked, as proto2 (ML Metadata's syntax) writes repeated scalars without ``[packed = true]``."""
        for value in values:
            self.varint(number, value)
        return self

    def double(self, number: int, value: float | None) -> Writer:
        if value is not None:
            self._key(number, FIXED64)
            self._buf += struct.pack("<d", value)
        return self

    def bytes_(self, number: int, value: bytes | None) -> Writer:
        if value is not None:
            self._key(number, LENGTH)
            self._buf += encode_varint(len(value)) + value
        return self

    def string(self, number: int, value: str | None) -> Writer:
        return self.bytes_(number, None if value is None else value.encode("utf-8"))

    def message(self, number: int, value: Writer | bytes | None) -> Writer:
        return self.bytes_(number, None if value is None else bytes(value))

    def __bytes__(self) -> bytes:
        return bytes(self._buf)


def _iter_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    pos = 0
    while pos < len(data):
        key, pos = decode_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ProtoError("field number 0")
        value: int | bytes
        if wire_type == VARINT:
            value, pos = decode_varint(data, pos)
        elif wire_type == FIXED64:
            if pos + 8 > len(data):
                raise ProtoError("truncated fixed64")
            value = int.from_bytes(data[pos:pos + 8], "little")
            pos += 8
        elif wire_type == LENGTH:
            size, pos = decode_varint(data, pos)
            if pos + size > len(data):
                raise ProtoError("truncated length-delimited field")
            value = data[pos:pos + size]
            pos += size
        elif wire_type == FIXED32:
            if pos + 4 > len(data):
                raise ProtoError("truncated fixed32")
            value = int.from_bytes(data[pos:pos + 4], "little")
            pos += 4
        else:
            raise ProtoError(f"unsupported wire type {wire_type}")
        yield number, wire_type, value


def fields(data: bytes) -> dict[int, list[int | bytes]]:
    """Every field of a message: number -> values in wire order (unknown fields kept, ignorable)."""
    out: dict[int, list[int | bytes]] = {}
    for number, _wire, value in _iter_fields(data):
        out.setdefault(number, []).append(value)
    return out


def first(msg: dict[int, list[int | bytes]], number: int) -> int | bytes | None:
    """The last value of a singular field (protobuf: the last one wins), or ``None``."""
    values = msg.get(number)
    return values[-1] if values else None


def repeated_varints(msg: dict[int, list[int | bytes]], number: int) -> list[int]:
    """A repeated integer field, whether it came packed or unpacked."""
    out: list[int] = []
    for value in msg.get(number, ()):
        if isinstance(value, bytes):
            pos = 0
            while pos < len(value):
                item, pos = decode_varint(value, pos)
                out.append(item)
        else:
            out.append(value)
    return out


# ------------------------------------------------------------------------------------------- gRPC-web
def frame(payload: bytes, *, trailer_frame: bool = False) -> bytes:
    """One gRPC-web frame: flag byte (0x00 data, 0x80 trailers), big-endian length, payload."""
    return bytes([0x80 if trailer_frame else 0x00]) + len(payload).to_bytes(4, "big") + payload


def trailer(code: int = 0, message: str = "") -> bytes:
    """The trailer frame that ends a gRPC-web response."""
    text = f"grpc-status:{code}\r\n"
    if message:
        from urllib.parse import quote

        text += f"grpc-message:{quote(message, safe=' ')}\r\n"
    return frame(text.encode("ascii"), trailer_frame=True)


def grpc_web_body(message: bytes, code: int = 0, error: str = "") -> bytes:
    """A whole unary gRPC-web response body: the message frame (when OK) and the trailers."""
    return (frame(message) if code == 0 else b"") + trailer(code, error)


def _parse_trailers(payload: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in payload.decode("latin-1").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            out[name.strip().lower()] = value.strip()
    return out


def parse_grpc_web(body: bytes, headers: dict[str, str] | None = None) -> bytes:
    """The message of a unary gRPC-web response; :class:`GrpcStatusError` for a non-OK status (in the trailer
    frame, or in the HTTP headers of a trailers-only answer)."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    messages: list[bytes] = []
    status: dict[str, str] = {}
    pos = 0
    while pos < len(body):
        if pos + 5 > len(body):
            raise ProtoError("truncated gRPC-web frame header")
        flag = body[pos]
        size = int.from_bytes(body[pos + 1:pos + 5], "big")
        payload = body[pos + 5:pos + 5 + size]
        if len(payload) != size:
            raise ProtoError("truncated gRPC-web frame")
        pos += 5 + size
        if flag & 0x80:
            status = _parse_trailers(payload)
        elif flag & 0x01:
            raise ProtoError("compressed gRPC-web frames are not supported")
        else:
            messages.append(payload)
    code_text = status.get("grpc-status") or headers.get("grpc-status")
    if code_text is None:
        raise ProtoError("gRPC-web response without grpc-status")
    try:
        code = int(code_text)
    except ValueError:
        raise ProtoError(f"bad grpc-status {code_text!r}") from None
    if code != 0:
        message = status.get("grpc-message") or headers.get("grpc-message") or ""
        raise GrpcStatusError(code, unquote(message))
    return b"".join(messages)
