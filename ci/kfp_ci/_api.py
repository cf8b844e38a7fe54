"""The few KFP operations deploy needs, over :class:`kfp_ci.client.Client`.

Deploy code talks to this narrow adapter (plain dataclasses, name lookups scoped to a namespace), so the
plan/apply, schedule and wait logic stays independent of the client's model classes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from kfp_ci._schedule import Owned, parse_marker
from kfp_ci.errors import ApiError, NotFound

__all__ = ["Api", "Pipeline", "RunInfo", "Version"]

TERMINAL = {"SUCCEEDED", "FAILED", "SKIPPED", "CANCELED", "ERROR"}
_V1_STATES = {"Succeeded": "SUCCEEDED", "Failed": "FAILED", "Skipped": "SKIPPED", "Error": "FAILED",
              "Running": "RUNNING", "Pending": "PENDING", "Terminating": "CANCELING", "Canceled": "CANCELED"}


@dataclass(frozen=True)
class Pipeline:
    id: str
    name: str


@dataclass(frozen=True)
class Version:
    id: str
    name: str
    pipeline_id: str
    description: str | None = None
    created: str = ""
    spec: dict[str, Any] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RunInfo:
    id: str
    name: str
    state: str
    created: datetime | None = None
    finished: datetime | None = None
    error: str | None = None
    tasks: dict[str, str] = field(default_factory=dict)
    pipeline_id: str | None = None
    version_id: str | None = None
    experiment_id: str | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        if isinstance(obj, Mapping):
            if obj.get(name) is not None:
                return obj[name]
        elif getattr(obj, name, None) is not None:
            return getattr(obj, name)
    return default


def _stamp(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value or "")


def _dt(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value and not value.startswith("1970"):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def _name_filter(key: str, value: str) -> str:
    return json.dumps({"predicates": [{"operation": "EQUALS", "key": key, "string_value": value}]})


class Api:
    """Deploy's view of a KFP server."""

    def __init__(self, client: Any, namespace: str | None = None) -> None:
        self.client = client
        self.namespace = namespace

    # ------------------------------------------------------------------ server
    @property
    def request_count(self) -> int:
        return int(getattr(self.client, "request_count", 0))

    def server_version(self) -> tuple[int, ...]:
        info = self.client.server
        text = str(_get(info, "version", default="") or "")
        parts = []
        for piece in text.lstrip("v").split("."):
            digits = "".join(ch for ch in piece if ch.isdigit())
            if not digits:
                break
            parts.append(int(digits))
        return tuple(parts)

    def supports_always_latest(self) -> bool:
        info = self.client.server
        if _get(info, "api") != "v2beta1":
            return False
        version = self.server_version()
        return not version or version >= (2, 5)

    # ----------------------------------------------------------- pipelines
    def find_pipeline(self, name: str, namespace: str | None) -> Pipeline | None:
        pipeline_id = self.client.get_pipeline_id(name, namespace=namespace)
        if not pipeline_id:
            return None
        return Pipeline(id=str(pipeline_id), name=name)

    def create_empty_pipeline(self, name: str, description: str | None, namespace: str | None) -> Pipeline | None:
        """Create a pipeline with no version; ``None`` when the server has no such endpoint."""
        create = getattr(self.client, "create_pipeline", None)
        if create is None:
            return None
        try:
            created = create(name, description=description, namespace=namespace)
        except NotFound:
            return None
        except ApiError as exc:
            if exc.status in (404, 405, 501):
                return None
            raise
        return Pipeline(id=str(_get(created, "pipeline_id", "id")), name=name)

    def upload_pipeline(self, package: Path, name: str, description: str | None, namespace: str | None) -> Pipeline:
        created = self.client.upload_pipeline(str(package), pipeline_name=name, description=description,
                                              namespace=namespace)
        return Pipeline(id=str(_get(created, "pipeline_id", "id")), name=name)

    def _version(self, raw: Any, pipeline_id: str) -> Version:
        return Version(
            id=str(_get(raw, "pipeline_version_id", "version_id", "id")),
            name=str(_get(raw, "name", "display_name", default="")),
            pipeline_id=str(_get(raw, "pipeline_id", default=pipeline_id)),
            description=_get(raw, "description"),
            created=_stamp(_get(raw, "created_at")),
            spec=_get(raw, "pipeline_spec"),
        )

    def find_version(self, pipeline_id: str, name: str) -> Version | None:
        listed = self.client.list_pipeline_versions(pipeline_id, filter=_name_filter("name", name), page_size=10)
        items = _get(listed, "pipeline_versions", "versions", default=listed if isinstance(listed, list) else [])
        for item in items or []:
            if _get(item, "name", "display_name") == name:
                return self._version(item, pipeline_id)
        return None

    def latest_version(self, pipeline_id: str) -> Version | None:
        listed = self.client.list_pipeline_versions(pipeline_id, sort_by="created_at desc", page_size=1)
        items = _get(listed, "pipeline_versions", "versions", default=listed if isinstance(listed, list) else [])
        return self._version(items[0], pipeline_id) if items else None

    def get_version(self, pipeline_id: str, version_id: str) -> Version:
        return self._version(self.client.get_pipeline_version(pipeline_id, version_id), pipeline_id)

    def upload_version(self, package: Path, pipeline_id: str, name: str, description: str) -> Version:
        raw = self.client.upload_pipeline_version(str(package), name, pipeline_id=pipeline_id,
                                                  description=description)
        return self._version(raw, pipeline_id)

    def delete_version(self, pipeline_id: str, version_id: str) -> None:
        self.client.delete_pipeline_version(pipeline_id, version_id)

    # ---------------------------------------------------------- experiments
    def experiment(self, name: str, namespace: str | None) -> str:
        created = self.client.create_experiment(name, namespace=namespace)
        return str(_get(created, "experiment_id", "id"))

    def find_experiment(self, name: str, namespace: str | None) -> str | None:
        try:
            found = self.client.get_experiment(experiment_name=name, namespace=namespace)
        except NotFound:
            return None
        return str(_get(found, "experiment_id", "id")) if found is not None else None

    # ----------------------------------------------------------------- runs
    def create_run(self, *, experiment_id: str, name: str, pipeline_id: str, version_id: str | None,
                   parameters: Mapping[str, Any]) -> RunInfo:
        raw = self.client.run_pipeline(experiment_id=experiment_id, job_name=name, pipeline_id=pipeline_id,
                                       version_id=version_id, params=dict(parameters))
        return self.run_info(raw)

    def run_info(self, raw: Any) -> RunInfo:
        state = str(_get(raw, "state", "status", default="PENDING") or "PENDING")
        state = _V1_STATES.get(state, state.upper())
        tasks: dict[str, str] = {}
        details = _get(raw, "tasks", "task_details", default=None)
        if details is None:
            details = _get(_get(raw, "run_details", default={}) or {}, "task_details", default=[])
        if isinstance(details, Mapping):
            tasks = {str(k): str(v) for k, v in details.items()}
        else:
            for task in details or []:
                name = _get(task, "display_name", "name", "task_name")
                if name and not str(name).startswith(("root", "exec-driver")):
                    tasks[str(name)] = str(_get(task, "state", default="?"))
        ref = _get(raw, "pipeline_version_reference", default=None) or {}
        error = _get(raw, "error", default=None)
        if isinstance(error, Mapping):
            error = error.get("message") or json.dumps(error)
        return RunInfo(
            id=str(_get(raw, "run_id", "id")),
            name=str(_get(raw, "display_name", "name", default="")),
            state=state,
            created=_dt(_get(raw, "created_at")),
            finished=_dt(_get(raw, "finished_at")),
            error=str(error) if error else None,
            tasks=tasks,
            pipeline_id=_get(raw, "pipeline_id") or _get(ref, "pipeline_id"),
            version_id=_get(raw, "pipeline_version_id", "version_id") or _get(ref, "pipeline_version_id"),
            experiment_id=_get(raw, "experiment_id"),
        )

    def get_run(self, run_id: str) -> RunInfo:
        return self.run_info(self.client.get_run(run_id))

    def terminate_run(self, run_id: str) -> None:
        self.client.terminate_run(run_id)

    def list_runs(self, *, namespace: str | None, experiment_id: str | None, limit: int) -> list[RunInfo]:
        listed = self.client.list_runs(namespace=namespace, experiment_id=experiment_id, page_size=limit,
                                       sort_by="created_at desc")
        items = _get(listed, "runs", default=listed if isinstance(listed, list) else [])
        return [self.run_info(item) for item in items or []]


class RecurringRuns:
    """:class:`kfp_ci._schedule.RecurringApi` over the client, for one pipeline, experiment and schedule."""

    def __init__(self, api: Api, *, namespace: str | None, experiment_id: str, pipeline_id: str,
                 version_id: str | None, trigger: Mapping[str, Any], parameters: Mapping[str, Any]) -> None:
        self.api = api
        self.namespace = namespace
        self.experiment_id = experiment_id
        self.pipeline_id = pipeline_id
        self.version_id = version_id
        self.trigger = trigger
        self.parameters = parameters

    def _owned(self, raw: Any) -> Owned:
        pid, spec, stamp = parse_marker(_get(raw, "description"))
        status = str(_get(raw, "status", "mode", "enabled", default="") or "")
        enabled = status.upper() in ("ENABLED", "ENABLE", "TRUE")
        return Owned(
            id=str(_get(raw, "recurring_run_id", "id")),
            name=str(_get(raw, "display_name", "name", default="")),
            enabled=enabled,
            created=stamp or "0" + _stamp(_get(raw, "created_at")),
            pipeline_id=pid,
            spec=spec,
        )

    def list_owned(self, pipeline_id: str) -> list[Owned]:
        listed = self.api.client.list_recurring_runs(namespace=self.namespace)  # every page
        found = [self._owned(item) for item in _get(listed, "recurring_runs", default=()) or ()]
        return [item for item in found if item.pipeline_id == pipeline_id]

    def create(self, *, name: str, description: str, enabled: bool) -> Owned:
        cron = (self.trigger.get("cron_schedule") or {}).get("cron")
        interval = (self.trigger.get("periodic_schedule") or {}).get("interval_second")
        raw = self.api.client.create_recurring_run(
            experiment_id=self.experiment_id,
            job_name=name,
            description=description,
            cron_expression=cron,
            interval_second=int(interval) if interval else None,
            max_concurrency=1,
            no_catchup=True,
            params=dict(self.parameters),
            pipeline_id=self.pipeline_id,
            version_id=self.version_id,
            enabled=enabled,
        )
        return self._owned(raw)

    def enable(self, recurring_run_id: str) -> None:
        self.api.client.enable_recurring_run(recurring_run_id)

    def disable(self, recurring_run_id: str) -> None:
        self.api.client.disable_recurring_run(recurring_run_id)

    def delete(self, recurring_run_id: str) -> None:
        self.api.client.delete_recurring_run(recurring_run_id)
