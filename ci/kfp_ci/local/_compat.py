"""What differs between the KFP backend generations the server imitates: 2.17, 2.5 and 1.8.

* 2.17 (grpc-gateway v2): errors ``{"code", "message", "details": [google.rpc.Status]}``; pipelines and versions
  have ``name`` separate from ``display_name``; healthz adds ``pipeline_store`` and is ``application/json``.
* 2.5 (grpc-gateway v1): errors ``{"error", "code", "message", "details"}``; only ``display_name``; healthz as
  ``text/plain``.
* 1.8: v1beta1 only; errors as 2.5 with an ``api.Error`` detail; duplicate uploads answer 500.
Upload handlers answer ``{"error_message", "error_details"}`` in every generation.
"""

from __future__ import annotations

from typing import Any

GRPC_HTTP = {3: 400, 5: 404, 6: 409, 7: 403, 9: 400, 13: 500, 16: 401, 12: 501}
TAGS = {"2.17": "2.17.0", "2.5": "2.5.0", "1.8": "1.8.5"}
COMMIT = "0000000kfpci"


class Compat:
    def __init__(self, generation: str) -> None:
        if generation not in TAGS:
            raise ValueError(f"compat must be one of {sorted(TAGS)}, not {generation!r}")
        self.generation = generation
        self.tag = TAGS[generation]

    @property
    def has_v2(self) -> bool:
        return self.generation != "1.8"

    @property
    def split_names(self) -> bool:
        """Pipelines and versions carry ``name`` apart from ``display_name`` (>= 2.14)."""
        return self.generation == "2.17"

    @property
    def gateway_v2(self) -> bool:
        return self.generation == "2.17"

    @property
    def always_latest(self) -> bool:
        return self.generation != "1.8"

    @property
    def generic_upload_errors(self) -> bool:
        return self.generation == "2.17"

    def duplicate_upload_status(self) -> int:
        return 500 if self.generation == "1.8" else 409

    def error_body(self, code: int, message: str, user_message: str | None = None) -> dict[str, Any]:
        """A grpc-gateway error body; ``message`` is the internal chain, ``user_message`` the short text."""
        short = user_message or message
        if self.generation == "1.8":
            detail: dict[str, Any] = {"@type": "type.googleapis.com/api.Error", "error_message": short,
                                      "error_details": message}
            return {"error": message, "code": code, "message": message, "details": [detail]}
        detail = {"@type": "type.googleapis.com/google.rpc.Status", "code": code, "message": short}
        if self.gateway_v2:
            return {"code": code, "message": message, "details": [detail]}
        return {"error": message, "code": code, "message": message, "details": [detail]}

    def healthz(self, api: str, multi_user: bool) -> tuple[dict[str, Any], str]:
        """(body, content type) of ``/apis/{api}/healthz``."""
        body: dict[str, Any] = {"commit_sha": COMMIT, "tag_name": self.tag, "multi_user": multi_user}
        if self.gateway_v2:
            if api == "v2beta1":
                body["pipeline_store"] = "database"
            return body, "application/json"
        return body, "text/plain; charset=utf-8"
