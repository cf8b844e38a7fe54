"""The API app: both generations' routes (under ``/`` and ``/pipeline``), healthz, the page, and KFP's error
bodies by generation.

Requests are decoded here (JSON body or multipart upload) and handled in a thread pool, since handlers do store
work. Faults and the access log sit in front of it (``_outer``), the login emulation between them (``_login``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from kfp_ci.local._compat import Compat
from kfp_ci.local._http import (
    MAX_BODY,
    BodyTooLarge,
    HttpError,
    Receive,
    Req,
    Resp,
    Router,
    Scope,
    Send,
    bad,
    respond,
    strip_prefix,
)
from kfp_ci.local._model import Model
from kfp_ci.local._v1 import register as register_v1
from kfp_ci.local._v2 import register as register_v2

if TYPE_CHECKING:
    from kfp_ci.local._options import ServerOptions

log = logging.getLogger("kfp_ci.local")


class Api:
    """The API and page (no auth, no faults): ``await api(scope, receive, send)``."""

    def __init__(self, options: ServerOptions, model: Model) -> None:
        self.options = options
        self.model = model
        self.compat: Compat = model.compat
        self.router = Router()
        if self.compat.has_v2:
            register_v2(self.router, model)
        register_v1(self.router, model)
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
        if method == "GET" and not path.startswith("/apis/"):
            from kfp_ci.local._page import page_response

            prefix = "/pipeline" if request.url.path.startswith("/pipeline") else ""
            user = request.headers.get("kubeflow-userid") or None
            page = await run_in_threadpool(page_response, self.model, path, user, prefix)
            if page is not None:
                return await respond(send, page)
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
            ctype = headers.get("content-type", "")
            if ctype.startswith("multipart/form-data"):
                req.upload = await _upload(request)
            elif path.endswith(("/upload", "/upload_version")):
                raise HttpError(3, "Failed to read the pipeline file: the request is not multipart/form-data "
                                f"(Content-Type: {ctype[:60] or 'none'}); send the package as the file field "
                                "'uploadfile'", kind="upload")
            else:
                req.raw = await request.body()
            resp = await run_in_threadpool(handler, req)
        except HttpError as exc:
            resp = self.error(exc)
        except RecursionError:
            resp = self.error(bad("the request nests too deeply"))
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


async def _upload(request: Any) -> tuple[bytes, str]:
    """The multipart field ``uploadfile``: its content and file name; 400 for a broken or incomplete body."""
    from starlette.formparsers import MultiPartException

    try:
        form = await request.form(max_part_size=MAX_BODY)
    except BodyTooLarge as exc:
        exc.kind = "upload"  # the upload handlers' body shape
        raise
    except MultiPartException as exc:
        raise HttpError(3, f"Failed to read the pipeline file: the multipart body is malformed: {exc}",
                        kind="upload") from None
    try:
        upload = form.get("uploadfile")
        if upload is None or isinstance(upload, str):
            raise HttpError(3, "Failed to read the pipeline file: the multipart field 'uploadfile' is "
                            "missing", kind="upload")
        return await upload.read(), upload.filename or ""
    finally:
        await form.close()
