"""Typed, immutable results of the KFP client, parsed from either API generation.

Field names follow kfp's v2beta1 models (``pipeline_id``, ``display_name``, ``state``...), so code written for
``kfp.Client`` reads them unchanged. v1beta1 answers are mapped onto the same fields (``id`` -> ``run_id``,
``status: Succeeded`` -> ``state: SUCCEEDED``, resource references -> ``experiment_id``/``pipeline_version_id``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

__all__ = [
    "TERMINAL_STATES",
    "Experiment",
    "ExperimentPage",
    "Page",
    "Pipeline",
    "PipelinePage",
    "PipelineVersion",
    "PipelineVersionPage",
    "RecurringRun",
    "RecurringRunPage",
    "Run",
    "RunPage",
    "ServerInfo",
    "Task",
    "parse_datetime",
]

TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "SKIPPED", "CANCELED"})
_V1_RUN_STATES = {
    "pending": "PENDING",
    "running": "RUNNING",
    "succeeded": "SUCCEEDED",
    "skipped": "SKIPPED",
    "failed": "FAILED",
    "error": "FAILED",
    "terminating": "CANCELING",
    "canceled": "CANCELED",
    "cancelled": "CANCELED",
    "unknown": "RUNTIME_STATE_UNSPECIFIED",
}


def parse_datetime(value: Any) -> datetime | None:
    """RFC 3339 (``2024-04-05T15:27:09Z``, fractional seconds of any length) -> aware datetime; epoch 0 -> None."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    if "." in text:
        head, _, rest = text.partition(".")
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        text = f"{head}.{(digits + '000000')[:6]}{rest}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    if parsed.year <= 1970:
        return None
    return parsed


def _int(value: Any) -> int | None:
    """int64 fields arrive as JSON strings."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _error(value: Any) -> str | None:
    """v2 ``googleRpcStatus`` or a v1 string -> the message."""
    if isinstance(value, Mapping):
        for detail in value.get("details") or []:
            if isinstance(detail, Mapping) and detail.get("message"):
                return str(detail["message"])
        return _str(value.get("message")) or (json.dumps(value) if value else None)
    return _str(value)


def _refs(raw: Mapping[str, Any]) -> dict[str, str]:
    """v1 resource references -> ``{"EXPERIMENT": id, "PIPELINE_VERSION": id, "NAMESPACE": id, ...}``."""
    out: dict[str, str] = {}
    for ref in raw.get("resource_references") or []:
        key = ref.get("key") or {}
        if key.get("type") and key.get("id"):
            out[str(key["type"])] = str(key["id"])
    return out


def _v1_params(raw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in raw or []:
        if isinstance(item, Mapping) and "name" in item:
            out[str(item["name"])] = item.get("value")
    return out


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What one healthz call tells: API generation, server version, multi-user mode."""

    api: str
    version: str
    multi_user: bool
    pipeline_store: str | None = None
    via_ui: bool = False

    @property
    def version_tuple(self) -> tuple[int, ...]:
        parts: list[int] = []
        for piece in self.version.lstrip("vV").split("."):
            digits = ""
            for ch in piece:
                if not ch.isdigit():
                    break
                digits += ch
            if not digits:
                break
            parts.append(int(digits))
        return tuple(parts)

    def at_least(self, *version: int) -> bool:
        """Unknown versions (dev builds) count as new."""
        mine = self.version_tuple
        return not mine or mine >= version


@dataclass(frozen=True, slots=True)
class Pipeline:
    pipeline_id: str
    name: str
    display_name: str
    description: str | None = None
    created_at: datetime | None = None
    namespace: str | None = None
    error: str | None = None

    @property
    def id(self) -> str:
        return self.pipeline_id

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Pipeline:
        name = _str(raw.get("name")) or _str(raw.get("display_name")) or ""
        namespace = _str(raw.get("namespace")) or _refs(raw).get("NAMESPACE")
        return cls(
            pipeline_id=str(raw.get("pipeline_id") or raw.get("id") or ""),
            name=name,
            display_name=_str(raw.get("display_name")) or name,
            description=_str(raw.get("description")),
            created_at=parse_datetime(raw.get("created_at")),
            namespace=namespace,
            error=_error(raw.get("error")),
        )


@dataclass(frozen=True, slots=True)
class PipelineVersion:
    pipeline_version_id: str
    pipeline_id: str
    name: str
    display_name: str
    description: str | None = None
    created_at: datetime | None = None
    code_source_url: str | None = None
    package_url: str | None = None
    error: str | None = None
    pipeline_spec: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def id(self) -> str:
        return self.pipeline_version_id

    @classmethod
    def from_json(cls, raw: Mapping[str, Any], pipeline_id: str = "") -> PipelineVersion:
        name = _str(raw.get("name")) or _str(raw.get("display_name")) or ""
        package = raw.get("package_url") or {}
        spec = raw.get("pipeline_spec")
        return cls(
            pipeline_version_id=str(raw.get("pipeline_version_id") or raw.get("id") or ""),
            pipeline_id=str(raw.get("pipeline_id") or _refs(raw).get("PIPELINE") or pipeline_id),
            name=name,
            display_name=_str(raw.get("display_name")) or name,
            description=_str(raw.get("description")),
            created_at=parse_datetime(raw.get("created_at")),
            code_source_url=_str(raw.get("code_source_url")),
            package_url=_str(package.get("pipeline_url")) if isinstance(package, Mapping) else None,
            error=_error(raw.get("error")),
            pipeline_spec=spec if isinstance(spec, Mapping) else None,
        )


@dataclass(frozen=True, slots=True)
class Experiment:
    experiment_id: str
    display_name: str
    description: str | None = None
    created_at: datetime | None = None
    namespace: str | None = None
    storage_state: str | None = None
    last_run_created_at: datetime | None = None

    @property
    def id(self) -> str:
        return self.experiment_id

    @property
    def name(self) -> str:
        return self.display_name

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Experiment:
        state = _str(raw.get("storage_state"))
        if state and state.startswith("STORAGESTATE_"):  # v1 enum names
            state = state[len("STORAGESTATE_") :]
        return cls(
            experiment_id=str(raw.get("experiment_id") or raw.get("id") or ""),
            display_name=_str(raw.get("display_name")) or _str(raw.get("name")) or "",
            description=_str(raw.get("description")),
            created_at=parse_datetime(raw.get("created_at")),
            namespace=_str(raw.get("namespace")) or _refs(raw).get("NAMESPACE"),
            storage_state=state,
            last_run_created_at=parse_datetime(raw.get("last_run_created_at")),
        )


@dataclass(frozen=True, slots=True)
class Task:
    task_id: str
    display_name: str
    state: str
    error: str | None = None

    @property
    def name(self) -> str:
        return self.display_name


@dataclass(frozen=True, slots=True)
class Run:
    run_id: str
    display_name: str
    state: str
    experiment_id: str | None = None
    pipeline_id: str | None = None
    pipeline_version_id: str | None = None
    description: str | None = None
    created_at: datetime | None = None
    scheduled_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    recurring_run_id: str | None = None
    storage_state: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict, compare=False)
    tasks: tuple[Task, ...] = ()

    @property
    def id(self) -> str:
        return self.run_id

    @property
    def name(self) -> str:
        return self.display_name

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Run:
        if "run" in raw and isinstance(raw["run"], Mapping):  # v1 apiRunDetail
            return cls._from_v1(raw["run"])
        if "run_id" not in raw and ("id" in raw or "status" in raw or "resource_references" in raw):
            return cls._from_v1(raw)
        ref = raw.get("pipeline_version_reference") or {}
        config = raw.get("runtime_config") or {}
        tasks = []
        for task in (raw.get("run_details") or {}).get("task_details") or []:
            tasks.append(
                Task(
                    task_id=str(task.get("task_id") or ""),
                    display_name=str(task.get("display_name") or ""),
                    state=str(task.get("state") or "RUNTIME_STATE_UNSPECIFIED"),
                    error=_error(task.get("error")),
                )
            )
        return cls(
            run_id=str(raw.get("run_id") or ""),
            display_name=str(raw.get("display_name") or ""),
            state=str(raw.get("state") or "PENDING"),
            experiment_id=_str(raw.get("experiment_id")),
            pipeline_id=_str(ref.get("pipeline_id")),
            pipeline_version_id=_str(ref.get("pipeline_version_id")) or _str(raw.get("pipeline_version_id")),
            description=_str(raw.get("description")),
            created_at=parse_datetime(raw.get("created_at")),
            scheduled_at=parse_datetime(raw.get("scheduled_at")),
            finished_at=parse_datetime(raw.get("finished_at")),
            error=_error(raw.get("error")),
            recurring_run_id=_str(raw.get("recurring_run_id")),
            storage_state=_str(raw.get("storage_state")),
            parameters=dict(config.get("parameters") or {}),
            tasks=tuple(tasks),
        )

    @classmethod
    def _from_v1(cls, raw: Mapping[str, Any]) -> Run:
        refs = _refs(raw)
        spec = raw.get("pipeline_spec") or {}
        status = str(raw.get("status") or "")
        state = _V1_RUN_STATES.get(status.lower(), "PENDING" if not status else status.upper())
        params = _v1_params(spec.get("parameters"))
        runtime = (spec.get("runtime_config") or {}).get("parameters") or {}
        params.update(runtime)
        return cls(
            run_id=str(raw.get("id") or ""),
            display_name=str(raw.get("name") or ""),
            state=state,
            experiment_id=refs.get("EXPERIMENT"),
            pipeline_id=_str(spec.get("pipeline_id")) or refs.get("PIPELINE"),
            pipeline_version_id=refs.get("PIPELINE_VERSION"),
            description=_str(raw.get("description")),
            created_at=parse_datetime(raw.get("created_at")),
            scheduled_at=parse_datetime(raw.get("scheduled_at")),
            finished_at=parse_datetime(raw.get("finished_at")),
            error=_str(raw.get("error")),
            recurring_run_id=refs.get("JOB"),
            storage_state=_str(raw.get("storage_state")),
            parameters=params,
        )


@dataclass(frozen=True, slots=True)
class RecurringRun:
    recurring_run_id: str
    display_name: str
    status: str
    """``ENABLED`` or ``DISABLED`` (v1 ``enabled`` mapped)."""
    experiment_id: str | None = None
    pipeline_id: str | None = None
    pipeline_version_id: str | None = None
    description: str | None = None
    cron: str | None = None
    interval_second: int | None = None
    max_concurrency: int | None = None
    no_catchup: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None
    namespace: str | None = None
    error: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def id(self) -> str:
        return self.recurring_run_id

    @property
    def name(self) -> str:
        return self.display_name

    @property
    def enabled(self) -> bool:
        return self.status == "ENABLED"

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RecurringRun:
        trigger = raw.get("trigger") or {}
        cron = trigger.get("cron_schedule") or {}
        periodic = trigger.get("periodic_schedule") or {}
        if "recurring_run_id" not in raw and ("id" in raw or "enabled" in raw or "resource_references" in raw):
            refs = _refs(raw)
            spec = raw.get("pipeline_spec") or {}
            enabled = raw.get("enabled")
            if enabled is None:
                enabled = str(raw.get("mode") or "").upper() == "ENABLED"
            params = _v1_params(spec.get("parameters"))
            params.update((spec.get("runtime_config") or {}).get("parameters") or {})
            return cls(
                recurring_run_id=str(raw.get("id") or ""),
                display_name=str(raw.get("name") or ""),
                status="ENABLED" if enabled else "DISABLED",
                experiment_id=refs.get("EXPERIMENT"),
                pipeline_id=_str(spec.get("pipeline_id")) or refs.get("PIPELINE"),
                pipeline_version_id=refs.get("PIPELINE_VERSION"),
                description=_str(raw.get("description")),
                cron=_str(cron.get("cron")),
                interval_second=_int(periodic.get("interval_second")),
                max_concurrency=_int(raw.get("max_concurrency")),
                no_catchup=bool(raw.get("no_catchup")),
                created_at=parse_datetime(raw.get("created_at")),
                updated_at=parse_datetime(raw.get("updated_at")),
                namespace=refs.get("NAMESPACE"),
                error=_str(raw.get("error")),
                parameters=params,
            )
        ref = raw.get("pipeline_version_reference") or {}
        status = str(raw.get("status") or "")
        if status not in ("ENABLED", "DISABLED"):
            status = "ENABLED" if str(raw.get("mode") or "") == "ENABLE" else "DISABLED"
        return cls(
            recurring_run_id=str(raw.get("recurring_run_id") or ""),
            display_name=str(raw.get("display_name") or ""),
            status=status,
            experiment_id=_str(raw.get("experiment_id")),
            pipeline_id=_str(ref.get("pipeline_id")),
            pipeline_version_id=_str(ref.get("pipeline_version_id")) or _str(raw.get("pipeline_version_id")),
            description=_str(raw.get("description")),
            cron=_str(cron.get("cron")),
            interval_second=_int(periodic.get("interval_second")),
            max_concurrency=_int(raw.get("max_concurrency")),
            no_catchup=bool(raw.get("no_catchup")),
            created_at=parse_datetime(raw.get("created_at")),
            updated_at=parse_datetime(raw.get("updated_at")),
            namespace=_str(raw.get("namespace")),
            error=_error(raw.get("error")),
            parameters=dict((raw.get("runtime_config") or {}).get("parameters") or {}),
        )


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """Items of a list call (all pages, or up to ``page_size``); ``next_page_token`` continues where it stopped."""

    items: tuple[T, ...]
    next_page_token: str = ""
    total_size: int | None = None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> T:
        return self.items[index]

    def __bool__(self) -> bool:
        return bool(self.items)


@dataclass(frozen=True, slots=True)
class PipelinePage(Page[Pipeline]):
    @property
    def pipelines(self) -> Sequence[Pipeline]:
        return self.items


@dataclass(frozen=True, slots=True)
class PipelineVersionPage(Page[PipelineVersion]):
    @property
    def pipeline_versions(self) -> Sequence[PipelineVersion]:
        return self.items


@dataclass(frozen=True, slots=True)
class ExperimentPage(Page[Experiment]):
    @property
    def experiments(self) -> Sequence[Experiment]:
        return self.items


@dataclass(frozen=True, slots=True)
class RunPage(Page[Run]):
    @property
    def runs(self) -> Sequence[Run]:
        return self.items


@dataclass(frozen=True, slots=True)
class RecurringRunPage(Page[RecurringRun]):
    @property
    def recurring_runs(self) -> Sequence[RecurringRun]:
        return self.items
