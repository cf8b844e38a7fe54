"""The base class of both API generations' handlers: the model, and the handlers that do not differ."""

from __future__ import annotations

from typing import Any

from kfp_ci.local._http import HttpError, Req, Resp, resp
from kfp_ci.local._model import Model
from kfp_ci.local._packages import read_package
from kfp_ci.local._store import Record


class Handlers:
    """The base of both API generations' handlers: the model, and the handlers that do not differ."""

    def __init__(self, model: Model) -> None:
        self.m = model

    def upload_target(self, req: Req) -> tuple[Record, bytes, dict[str, Any], str]:
        """An upload_version request's pipeline (query ``pipelineid``, authorized), package, spec and file name."""
        assert req.upload is not None
        content, filename = req.upload
        q = req.query
        pid = q.get("pipelineid") or ""
        if not pid:
            raise HttpError(3, "Invalid input error: Please specify a pipeline id when creating versions.",
                            kind="upload")
        pipeline = self.m.store.get("pipeline", pid)
        if pipeline is None:
            raise HttpError(5, f"Failed to create a pipeline version: pipeline {pid} not found", kind="upload")
        self.m.authorize(req.user, pipeline.get("_ns", ""))
        content, spec = read_package(content, filename)
        return pipeline, content, spec, filename

    def enable(self, req: Req) -> Resp:
        self.m.set_enabled(req.params["id"], req.user, True)
        return resp(200, {})

    def disable(self, req: Req) -> Resp:
        self.m.set_enabled(req.params["id"], req.user, False)
        return resp(200, {})

    def delete_recurring(self, req: Req) -> Resp:
        rec = self.m.recurring(req.params["id"], req.user)
        self.m.store.delete("recurring", rec["id"])
        return resp(200, {})

    def terminate_run(self, req: Req) -> Resp:
        self.m.terminate(req.params["run_id"], req.user)
        return resp(200, {})

    def delete_run(self, req: Req) -> Resp:
        self.m.delete_run(req.params["run_id"], req.user)
        return resp(200, {})

    def retry_run(self, req: Req) -> Resp:
        self.m.retry(req.params["run_id"], req.user)
        return resp(200, {})

    def archive_run(self, req: Req) -> Resp:
        r = self.m.run(req.params["run_id"], req.user)
        self.m.set_storage("run", r["id"], "ARCHIVED")
        return resp(200, {})

    def unarchive_run(self, req: Req) -> Resp:
        r = self.m.run(req.params["run_id"], req.user)
        self.m.set_storage("run", r["id"], "AVAILABLE")
        return resp(200, {})
