"""The server's HTTP primitives: ASGI types, ``Req``/``Resp``, the regex ``Router`` and ``HttpError``.

Everything that handles requests builds on this module; it imports nothing of the server but ``_compat``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from kfp_ci.local._compat import GRPC_HTTP

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class HttpError(Exception):
    """An error answer. ``kind`` picks the body: gateway (by generation), upload or plain text."""

    def __init__(self, code: int, message: str, *, kind: str = "gateway", status: int | None = None,
                 user_message: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status or GRPC_HTTP.get(code, 500)
        self.message = message
        self.kind = kind
        self.user_message = user_message


MAX_BODY = 40 << 20  # a request body: a 32 MiB package (KFP's limit) and its multipart framing, or a JSON body
MAX_JSON_DEPTH = 200  # nesting of a JSON body (a pipeline spec nests about 15 deep)
MAX_JSON_ITEMS = 200_000  # commas in a JSON body: its items, bounded before parsing (a pipeline spec has thousands)


class BodyTooLarge(HttpError):
    """A request body over ``MAX_BODY``: 413, before more of it is read."""

    def __init__(self) -> None:
        message = f"the request body is larger than {MAX_BODY >> 20} MiB"
        super().__init__(8, f"Invalid input error: {message}", status=413, user_message=message)


def bad(message: str) -> HttpError:
    return HttpError(3, f"Invalid input error: {message}", user_message=message)


def not_found(what: str, ident: str) -> HttpError:
    msg = f"{what} {ident} not found"
    return HttpError(5, f"NotFoundError: {msg}", user_message=msg)


@dataclass
class Req:
    """One API request as a handler sees it: path parameters, query, lower-case headers, body or upload."""

    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes = b""
    upload: tuple[bytes, str] | None = None
    _json: Any = field(default=None)

    @property
    def user(self) -> str | None:
        return self.headers.get("kubeflow-userid") or None

    def json(self) -> Any:
        """The JSON body ({} when empty); 400 for invalid JSON, ``NaN``/``Infinity`` (not JSON), deep nesting or
        more than ``MAX_JSON_ITEMS`` items."""
        if not self.raw.strip():
            return {}
        if self.raw.count(b",") > MAX_JSON_ITEMS:
            detail = f"the request body has more than {MAX_JSON_ITEMS:,} items"
            raise HttpError(3, f"Invalid input error: {detail}", user_message=detail)
        try:
            value = json.loads(self.raw, parse_constant=_no_constant)
        except RecursionError:
            value, deep = None, True
        except ValueError as exc:
            detail = str(exc) if isinstance(exc, _NotJson) else "the request body is not valid JSON"
            raise HttpError(3, f"Invalid input error: {detail}", user_message=detail) from None
        else:
            deep = deeper_than(value, MAX_JSON_DEPTH)
        if deep:
            detail = f"the request body nests more than {MAX_JSON_DEPTH} levels deep"
            raise HttpError(3, f"Invalid input error: {detail}", user_message=detail)
        return value


class _NotJson(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _NotJson(f"the request body is not valid JSON: {name} is not a JSON number")


def deeper_than(value: Any, limit: int) -> bool:
    """Whether parsed JSON or YAML nests mappings and lists more than ``limit`` deep (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Any = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children)
    return False


@dataclass
class Resp:
    """A handler's answer: status, body (dicts and lists are sent as JSON) and content type."""

    status: int
    body: Any
    content_type: str = "application/json"


Handler = Callable[[Req], Resp]


class Router:
    """Routes by method and path template; ``{name}`` matches one path segment (no ``/`` or ``:``)."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, template: str, handler: Handler) -> None:
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/:]+)", template)
        self.routes.append((method, re.compile(f"^{pattern}$"), handler))

    def match(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        path_found = False
        for m, regex, handler in self.routes:
            found = regex.match(path)
            if found:
                path_found = True
                if m == method:
                    return handler, found.groupdict(), True
        return None, {}, path_found


def resp(status: int, body: Any) -> Resp:
    """A JSON answer."""
    return Resp(status, body)


def strip_prefix(path: str) -> str:
    if path == "/pipeline" or path.startswith("/pipeline/"):
        return path[len("/pipeline"):] or "/"
    return path


async def respond(send: Send, resp: Resp) -> None:
    if isinstance(resp.body, (dict, list)):
        data = json.dumps(resp.body).encode()
    elif isinstance(resp.body, bytes):
        data = resp.body
    else:
        data = str(resp.body).encode()
    await send({"type": "http.response.start", "status": resp.status,
                "headers": [(b"content-type", resp.content_type.encode()),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
