"""HTTP layer: v2beta1 and v1beta1 routes (under ``/`` and ``/pipeline``), faults, access log, the page.

A small regex router over one ASGI callable, so KFP's ``{id}:action`` paths, the ``/pipeline`` prefix and
KFP's error bodies (by generation) are handled exactly. Store work runs in a thread pool.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kfp_ci.local import _v1, _v2
from kfp_ci.local._api import HttpError, Model
from kfp_ci.local._compat import Compat

if TYPE_CHECKING:
    from kfp_ci.local import ServerOptions

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("kfp_ci.local")


@dataclass
class Req:
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
        if not self.raw.strip():
            return {}
        try:
            return json.loads(self.raw)
        except ValueError:
            raise HttpError(3, "Invalid input error: the request body is not valid JSON",
                            user_message="the request body is not valid JSON") from None


@dataclass
class Resp:
    status: int
    body: Any
    content_type: str = "application/json"


Handler = Callable[[Req], Resp]


class Router:
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


# ------------------------------------------------------------------------------------------------ faults
@dataclass
class Fault:
    match: re.Pattern[str]
    method: str | None
    count: int
    action: str
    status: int = 503
    body: str = ""
    content_type: str = "text/plain; charset=utf-8"
    seconds: float = 0.0


class Faults:
    ACTIONS = ("status", "reset", "reset_after", "delay", "expire_sessions")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, *, match: str = ".*", method: str | None = None, count: int = 1, action: str = "status",
            status: int = 503, body: str = "", content_type: str | None = None, seconds: float = 0.0) -> None:
        if action not in self.ACTIONS:
            raise ValueError(f"unknown fault action {action!r}; one of {self.ACTIONS}")
        fault = Fault(re.compile(match), method.upper() if method else None, int(count), action, int(status),
                      body, content_type or "text/plain; charset=utf-8", float(seconds))
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.count > 0 and (fault.method is None or fault.method == method) and fault.match.search(path):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None


# -------------------------------------------------------------------------------------------------- app
class Api:
    """The API and page (no auth, no faults): ``await api(scope, receive, send)``."""

    def __init__(self, options: ServerOptions, model: Model) -> None:
        self.options = options
        self.model = model
        self.compat: Compat = model.compat
        self.router = Router()
        if self.compat.has_v2:
            _v2.register(self.router, model)
        _v1.register(self.router, model)
        if self.compat.has_v2:
            self.router.add("GET", "/apis/v2beta1/healthz", self._healthz_v2)
        self.router.add("GET", "/apis/v1beta1/healthz", self._healthz_v1)

    def _healthz_v2(self, req: Req) -> Resp:
        body, ctype = self.compat.healthz("v2beta1", self.model.multi_user)
        return Resp(200, body, ctype)

    def _healthz_v1(self, req: Req) -> Resp:
        body, ctype = self.compat.healthz("v1beta1", self.model.multi_user)
        return Resp(200, body, ctype)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from starlette.concurrency import run_in_threadpool
        from starlette.requests import Request

        if scope["type"] == "lifespan":
            return
        request = Request(scope, receive)
        path = strip_prefix(request.url.path)
        method = request.method
        if method == "GET" and path in ("/", "/index.html"):
            from kfp_ci.local._page import render_page

            html = await run_in_threadpool(render_page, self.model)
            return await respond(send, Resp(200, html, "text/html; charset=utf-8"))
        handler, params, path_found = self.router.match(method, path)
        if handler is None:
            status = 405 if path_found else 404
            text = "Method Not Allowed" if path_found else "404 page not found"
            code = 12 if path_found else 5
            body: Any = text + "\n"
            ctype = "text/plain; charset=utf-8"
            if path.startswith("/apis/") and path_found:
                body, ctype = self.compat.error_body(code, text), "application/json"
            return await respond(send, Resp(status, body, ctype))
        headers = {k.lower(): v for k, v in request.headers.items()}
        req = Req(method, path, params, dict(request.query_params), headers)
        try:
            if headers.get("content-type", "").startswith("multipart/form-data"):
                form = await request.form(max_part_size=64 << 20)
                upload = form.get("uploadfile")
                if upload is None or isinstance(upload, str):
                    raise HttpError(3, "Failed to read the pipeline file: the multipart field 'uploadfile' is "
                                    "missing", kind="upload")
                req.upload = (await upload.read(), upload.filename or "")
                await form.close()
            else:
                req.raw = await request.body()
            resp = await run_in_threadpool(handler, req)
        except HttpError as exc:
            resp = self.error(exc)
        except Exception as exc:
            log.exception("internal error on %s %s", method, path)
            resp = self.error(HttpError(13, f"Internal error: {exc}"))
        await respond(send, resp)

    def error(self, exc: HttpError) -> Resp:
        if exc.kind == "plain":
            return Resp(exc.status, exc.message, "text/plain")
        if exc.kind == "upload":
            return Resp(exc.status, {"error_message": exc.message, "error_details": exc.message})
        return Resp(exc.status, self.compat.error_body(exc.code, exc.message, exc.user_message))


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


class Outer:
    """Faults and the access log, in front of everything (login emulation included)."""

    def __init__(self, inner: ASGIApp, *, faults: Faults | None, access_log: bool,
                 expire_sessions: Callable[[], None]) -> None:
        self.inner = inner
        self.faults = faults
        self.access_log = access_log
        self.expire_sessions = expire_sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.inner(scope, receive, send)
        start = time.perf_counter()
        status = {"code": 0}

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        method = scope["method"]
        path = scope["path"]
        try:
            await self._handle(scope, receive, logged_send, method, path)
        finally:
            if self.access_log:
                ms = (time.perf_counter() - start) * 1000
                client = scope.get("client") or ("-", 0)
                query = _mask_query(scope.get("query_string", b"").decode("latin-1"))
                target = f"{path}?{query}" if query else path
                sys.stderr.write(f"{client[0]} {method} {target} {status['code'] or '-'} {ms:.1f}ms\n")
                sys.stderr.flush()

    async def _handle(self, scope: Scope, receive: Receive, send: Send, method: str, path: str) -> None:
        if path == "/_kfp_ci/faults" and self.faults is not None:
            return await self._control(scope, receive, send, method)
        fault = self.faults.take(method, path) if self.faults is not None else None
        if fault is None:
            return await self.inner(scope, receive, send)
        if fault.action == "status":
            return await respond(send, Resp(fault.status, fault.body, fault.content_type))
        if fault.action == "delay":
            await asyncio.sleep(fault.seconds)
            return await self.inner(scope, receive, send)
        if fault.action == "expire_sessions":
            self.expire_sessions()
            return await self.inner(scope, receive, send)
        if fault.action == "reset":
            return await _cut(send)
        # reset_after: handle fully (side effects happen), swallow the answer, cut the connection

        async def swallow(message: Message) -> None:
            return None
        await self.inner(scope, receive, swallow)
        await _cut(send)

    async def _control(self, scope: Scope, receive: Receive, send: Send, method: str) -> None:
        assert self.faults is not None
        if method == "DELETE":
            self.faults.clear()
            return await respond(send, Resp(200, {}))
        if method != "POST":
            return await respond(send, Resp(405, {"error": "use POST or DELETE"}))
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            spec = json.loads(raw or b"{}")
            if not isinstance(spec, dict):
                raise ValueError("the body must be a JSON object")
            if spec.get("action") == "expire_sessions" and "match" not in spec:
                self.expire_sessions()
                return await respond(send, Resp(200, {}))
            self.faults.add(**spec)
        except (ValueError, TypeError, re.error) as exc:
            return await respond(send, Resp(400, {"error": str(exc)}))
        await respond(send, Resp(200, {}))


async def _cut(send: Send) -> None:
    """Start an answer and drop the connection before it completes (the client sees a protocol error)."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")]})
    await send({"type": "http.response.body", "body": b"{", "more_body": True})


class _DropIncomplete(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_DropIncomplete())


_SENSITIVE_QUERY = re.compile(r"(?i)(^|&)(code|state|req|back|hmac|token|access_token|id_token)=[^&]*")


def _mask_query(query: str) -> str:
    """The query string as the access log shows it: login codes, state and tokens as ``***``."""
    return _SENSITIVE_QUERY.sub(lambda m: f"{m.group(1)}{m.group(2)}=***", query)
