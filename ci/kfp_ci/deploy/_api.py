"""The few KFP operations deploy needs, over :class:`kfp_ci.client.Client` and its typed models.

Deploy code talks to this narrow adapter: name lookups scoped to a namespace, get-or-create experiments, and
the recurring-run operations of the schedule swap (:class:`RecurringRuns`). Results are the client's own
models (:class:`~kfp_ci.client.PipelineVersion`, :class:`~kfp_ci.client.Run`), whatever the API generation.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kfp_ci.client import PipelineVersion, RecurringRun, Run
from kfp_ci.errors import ApiError, NotFound

if TYPE_CHECKING:
    from kfp_ci.client import Client
    from kfp_ci.deploy._schedule import Owned

__all__ = ["Api", "RecurringRuns", "task_states"]

_PLUMBING = ("root", "exec-driver")  # v2 task details of the DAG driver, not the user's tasks


def task_states(run: Run) -> dict[str, str]:
    """The user's tasks of ``run`` by name -> state (empty when the server reports none, e.g. KFP 1.x)."""
    return {t.display_name: t.state for t in run.tasks if t.display_name and not t.display_name.startswith(_PLUMBING)}


class Api:
    """Deploy's view of a KFP server."""

    def __init__(self, client: Client, namespace: str | None = None) -> None:
        self.client = client
        self.namespace = namespace

    # ------------------------------------------------------------------ server
    @property
    def host(self) -> str:
        return self.client.host

    @property
    def request_count(self) -> int:
        return self.client.request_count

    def supports_always_latest(self) -> bool:
        """Recurring runs without a version (always the latest) exist from KFP 2.5, v2beta1 API only."""
        info = self.client.server
        return info.api == "v2beta1" and info.at_least(2, 5)

    # ----------------------------------------------------------- pipelines
    def find_pipeline(self, name: str, namespace: str | None) -> str | None:
        """The id of the pipeline named ``name`` in ``namespace`` (shared when ``None``)."""
        return self.client.get_pipeline_id(name, namespace=namespace)

    def create_empty_pipeline(self, name: str, description: str | None, namespace: str | None) -> str | None:
        """Create a pipeline with no version; ``None`` when the server has no such endpoint (KFP 1.x)."""
        try:
            return self.client.create_pipeline(name, description=description, namespace=namespace).pipeline_id
        except NotFound:
            return None
        except ApiError as exc:
            if exc.status in (404, 405, 501):
                return None
            raise

    def upload_pipeline(self, package: Path, name: str, description: str | None, namespace: str | None) -> str:
        return self.client.upload_pipeline(str(package), pipeline_name=name, description=description,
                                           namespace=namespace).pipeline_id

    def find_version(self, pipeline_id: str, name: str) -> PipelineVersion | None:
        page = self.client.list_pipeline_versions(
            pipeline_id, page_size=10,
            filter={"predicates": [{"operation": "EQUALS", "key": "name", "string_value": name}]})
        return next((v for v in page if name in (v.name, v.display_name)), None)

    def latest_version(self, pipeline_id: str) -> PipelineVersion | None:
        page = self.client.list_pipeline_versions(pipeline_id, sort_by="created_at desc", page_size=1)
        return page[0] if page else None

    def get_version(self, pipeline_id: str, version_id: str) -> PipelineVersion:
        return self.client.get_pipeline_version(pipeline_id, version_id)

    def upload_version(self, package: Path, pipeline_id: str, name: str, description: str) -> PipelineVersion:
        return self.client.upload_pipeline_version(str(package), name, pipeline_id=pipeline_id,
                                                   description=description)

    def delete_version(self, pipeline_id: str, version_id: str) -> None:
        self.client.delete_pipeline_version(pipeline_id, version_id)

    def delete_pipeline(self, pipeline_id: str) -> None:
        self.client.delete_pipeline(pipeline_id)

    # ---------------------------------------------------------- experiments
    def experiment(self, name: str, namespace: str | None) -> str:
        """Get-or-create the experiment named ``name``; its id."""
        return self.client.create_experiment(name, namespace=namespace).experiment_id

    def find_experiment(self, name: str, namespace: str | None) -> str | None:
        try:
            return self.client.get_experiment(experiment_name=name, namespace=namespace).experiment_id
        except NotFound:
            return None

    # ----------------------------------------------------------------- runs
    def create_run(self, *, experiment_id: str, name: str, pipeline_id: str, version_id: str | None,
                   parameters: Mapping[str, Any], description: str | None = None) -> Run:
        return self.client.run_pipeline(experiment_id=experiment_id, job_name=name, pipeline_id=pipeline_id,
                                        version_id=version_id, params=dict(parameters), description=description)

    def get_run(self, run_id: str) -> Run:
        return self.client.get_run(run_id)

    def terminate_run(self, run_id: str) -> None:
        self.client.terminate_run(run_id)

    def list_runs(self, *, namespace: str | None, experiment_id: str | None, limit: int) -> list[Run]:
        page = self.client.list_runs(namespace=namespace, experiment_id=experiment_id, page_size=limit,
                                     sort_by="created_at desc")
        return list(page)


class RecurringRuns:
    """:class:`kfp_ci.deploy._schedule.RecurringApi` over the client, for one pipeline, experiment and schedule."""

    def __init__(self, api: Api, *, namespace: str | None, experiment_id: str, pipeline_id: str,
                 version_id: str | None, trigger: Mapping[str, Any], parameters: Mapping[str, Any]) -> None:
        self.api = api
        self.namespace = namespace
        self.experiment_id = experiment_id
        self.pipeline_id = pipeline_id
        self.version_id = version_id
        self.trigger = trigger
        self.parameters = parameters

    @staticmethod
    def _owned(rr: RecurringRun) -> Owned:
        from kfp_ci.deploy._schedule import Owned, parse_marker

        pid, spec, stamp = parse_marker(rr.description)
        created = stamp or "0" + (rr.created_at.isoformat() if rr.created_at else "")
        return Owned(id=rr.recurring_run_id, name=rr.display_name, enabled=rr.enabled, created=created,
                     pipeline_id=pid, spec=spec)

    def list_owned(self, pipeline_id: str) -> list[Owned]:
        listed = self.api.client.list_recurring_runs(namespace=self.namespace)  # every page
        return [owned for owned in map(self._owned, listed) if owned.pipeline_id == pipeline_id]

    def create(self, *, name: str, description: str, enabled: bool) -> Owned:
        cron = (self.trigger.get("cron_schedule") or {}).get("cron")
        interval = (self.trigger.get("periodic_schedule") or {}).get("interval_second")
        created = self.api.client.create_recurring_run(
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
        return self._owned(created)

    def enable(self, recurring_run_id: str) -> None:
        self.api.client.enable_recurring_run(recurring_run_id)

    def disable(self, recurring_run_id: str) -> None:
        self.api.client.disable_recurring_run(recurring_run_id)

    def delete(self, recurring_run_id: str) -> None:
        self.api.client.delete_recurring_run(recurring_run_id)
