"""The outermost ASGI layer, in front of the login emulation: the request body limit (413), injected faults
(``--faults``) and the access log; and ``FaultControl``, the faults endpoint, which sits behind the login emulation so
that it needs the same authentication as the API."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kfp_ci.local._http import MAX_BODY, ASGIApp, BodyTooLarge, Message, Receive, Resp, Scope, Send, respond


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


class Outer:
    """The body limit, faults and the access log, in front of everything (login emulation included)."""

    def __init__(self, inner: ASGIApp, *, faults: Faults | None, access_log: bool,
                 expire_sessions: Callable[[], None], max_body: int = MAX_BODY) -> None:
        self.inner = inner
        self.faults = faults
        self.access_log = access_log
        self.expire_sessions = expire_sessions
        self.max_body = max_body

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
            await self._limited(scope, receive, logged_send, method, path, status)
        finally:
            if self.access_log:
                ms = (time.perf_counter() - start) * 1000
                client = scope.get("client") or ("-", 0)
                query = _mask_query(scope.get("query_string", b"").decode("latin-1"))
                target = f"{path}?{query}" if query else path
                sys.stderr.write(f"{client[0]} {method} {target} {status['code'] or '-'} {ms:.1f}ms\n")
                sys.stderr.flush()

    async def _limited(self, scope: Scope, receive: Receive, send: Send, method: str, path: str,
                       status: dict[str, int]) -> None:
        """413 at once for a declared length over the limit; otherwise count what is read and stop past it."""
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            return await _too_large(send)
        seen = {"bytes": 0}

        async def counted() -> Message:
            message = await receive()
            seen["bytes"] += len(message.get("body", b""))
            if seen["bytes"] > self.max_body:
                raise BodyTooLarge()
            return message
        try:
            await self._handle(scope, counted, send, method, path)
        except BodyTooLarge:  # an app that does not answer it itself (login pages, ML Metadata)
            if not status["code"]:
                await _too_large(send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send, method: str, path: str) -> None:
        fault = self.faults.take(method, path) if self.faults is not None and path != FaultControl.PATH else None
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

class FaultControl:
    """``POST``/``DELETE /_kfp_ci/faults`` (``--faults``), in front of the API and behind the login emulation: the
    same authentication as the API; in multi-user mode without login, the caller's ``kubeflow-userid`` header."""

    PATH = "/_kfp_ci/faults"

    def __init__(self, inner: ASGIApp, faults: Faults, *, expire_sessions: Callable[[], None],
                 require_user: bool) -> None:
        self.inner = inner
        self.faults = faults
        self.expire_sessions = expire_sessions
        self.require_user = require_user

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.PATH:
            return await self.inner(scope, receive, send)
        if self.require_user and not any(k.lower() == b"kubeflow-userid" and v for k, v in scope.get("headers", [])):
            return await respond(send, Resp(401, {"error": "Unauthenticated: there is no user identity header"}))
        await self._control(receive, send, scope["method"])

    async def _control(self, receive: Receive, send: Send, method: str) -> None:
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


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send: Send) -> None:
    error = BodyTooLarge()
    await respond(send, Resp(413, {"error": error.message, "code": error.code, "message": error.message}))


class _DropIncomplete(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_DropIncomplete())


_SENSITIVE_QUERY = re.compile(r"(?i)(^|&)(code|state|req|back|hmac|token|access_token|id_token)=[^&]*")


def _mask_query(query: str) -> str:
    """The query string as the access log shows it: login codes, state and tokens as ``***``."""
    return _SENSITIVE_QUERY.sub(lambda m: f"{m.group(1)}{m.group(2)}=***", query)
