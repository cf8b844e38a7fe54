"""What a deploy tells its user: a human summary, JSON, GitHub step outputs and a Markdown job summary."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from kfp_ci import _console, github

__all__ = ["DeployResult", "emit", "format_duration", "mermaid_dag", "run_url"]


@dataclass(slots=True)
class DeployResult:
    """The outcome of deploying one pipeline (or, with ``dry_run``, what would happen)."""

    pipeline: str
    namespace: str | None = None
    host: str | None = None
    pipeline_id: str | None = None
    pipeline_action: str = "found"
    """found | created | would create"""
    version_name: str | None = None
    version_id: str | None = None
    version_action: str = "unchanged"
    """uploaded | unchanged | would upload (deploy); deployed (run: an existing version)"""
    content_hash: str | None = None
    package: str | None = None
    """the compiled file uploaded (or compared), as given or relative to the working directory"""
    compiled: bool = False
    """whether ``package`` was compiled by this command (else a committed or given file)"""
    package_origin: str = ""
    """how the package came to be: ``compiled now``, ``committed file, not recompiled`` or ``as given``"""
    experiment: str | None = None
    experiment_id: str | None = None
    run_id: str | None = None
    run_url: str | None = None
    run_state: str | None = None
    run_duration: float | None = None
    run_error: str | None = None
    run_skipped: str | None = None
    """why no run was started although one was asked for (the pipeline is unchanged)"""
    recurring_run_id: str | None = None
    recurring_action: str | None = None
    """created | unchanged | swapped | superseded | would create | would swap"""
    schedule: str | None = None
    next_fire: list[str] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)
    dry_run: bool = False
    dag: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("dag")
        return data

    def outputs(self) -> dict[str, str | None]:
        return {
            "pipeline-id": self.pipeline_id,
            "version-id": self.version_id,
            "version-name": self.version_name,
            "version-action": self.version_action,
            "run-id": self.run_id,
            "run-url": self.run_url,
            "run-state": self.run_state,
            "recurring-run-id": self.recurring_run_id,
        }

    def result_entry(self) -> dict[str, Any]:
        """This pipeline's object in the ``results`` step output (one per pipeline deployed)."""
        return {
            "pipeline": self.pipeline,
            "pipeline_id": self.pipeline_id,
            "version_id": self.version_id,
            "version_name": self.version_name,
            "version_action": self.version_action,
            "content_hash": self.content_hash,
            "package": self.package,
            "run_id": self.run_id,
            "run_url": self.run_url,
            "run_state": self.run_state,
            "run_skipped": self.run_skipped,
            "recurring_run_id": self.recurring_run_id,
        }


def run_url(host: str, run_id: str) -> str:
    """The KFP UI page of a run: ``<host>/#/runs/details/<id>`` (host keeps its ``/pipeline`` prefix)."""
    return f"{host.rstrip('/')}/#/runs/details/{run_id}"


def dag_of(spec: Mapping[str, Any]) -> dict[str, list[str]]:
    """Top-level tasks of a compiled pipeline and the tasks each one depends on."""
    tasks = ((spec.get("root") or {}).get("dag") or {}).get("tasks") or {}
    dag: dict[str, list[str]] = {}
    for name, task in tasks.items():
        deps = list((task or {}).get("dependentTasks") or [])
        inputs = ((task or {}).get("inputs") or {})
        for kind in ("parameters", "artifacts"):
            for value in (inputs.get(kind) or {}).values():
                producer = ((value or {}).get("taskOutputParameter") or (value or {}).get("taskOutputArtifact") or {})
                upstream = producer.get("producerTask")
                if upstream and upstream not in deps:
                    deps.append(upstream)
        dag[name] = sorted(d for d in deps if d in tasks)
    return dag


def _node(name: str) -> str:
    return "t_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def mermaid_dag(dag: Mapping[str, Sequence[str]]) -> str:
    """A Mermaid flowchart of the pipeline's tasks (empty string when there are none)."""
    if not dag:
        return ""
    lines = ["```mermaid", "graph TD"]
    for name in dag:
        label = name.replace('"', "'")
        lines.append(f'  {_node(name)}["{label}"]')
    for name, deps in dag.items():
        for dep in deps:
            lines.append(f"  {_node(dep)} --> {_node(name)}")
    lines.append("```")
    return "\n".join(lines)


def format_duration(seconds: float | None) -> str:
    """A run's duration as every report prints it: ``<1s``, ``12s`` or ``4m05s`` (``-`` when unknown)."""
    return _duration(seconds)


def _duration(seconds: float | None) -> str:
    """KFP reports run times to the second, so a duration is whole seconds: ``<1s``, ``12s``, ``4m05s``."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return "<1s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _rows(result: DeployResult) -> list[tuple[str, str]]:
    pid = f", {result.pipeline_id}" if result.pipeline_id else ""
    rows = [("pipeline", f"{result.pipeline} ({result.pipeline_action}{pid})")]
    if result.namespace:
        rows.append(("namespace", result.namespace))
    if result.package:
        how = result.package_origin or ("compiled now" if result.compiled else "committed file, not recompiled")
        rows.append(("package", f"{result.package} ({how})"))
    if result.content_hash:
        rows.append(("content hash", f"sha256:{result.content_hash}"))
    rows.append(("version", f"{result.version_name} ({result.version_action}"
                 f"{', ' + result.version_id if result.version_id else ''})"))
    if result.experiment:
        rows.append(("experiment", result.experiment))
    if result.run_skipped:
        rows.append(("run", f"not started: {result.run_skipped}"))
    if result.run_id or (result.dry_run and result.run_state):
        rows.append(("run", f"{result.run_id or '-'}" + (f"  {result.run_url}" if result.run_url else "")))
        rows.append(("state", (result.run_state or "-") + (f" ({result.run_error})" if result.run_error else "")))
        rows.append(("duration", _duration(result.run_duration)))
    if result.recurring_action:
        what = f"{result.recurring_run_id or '-'} ({result.recurring_action}; {result.schedule})"
        rows.append(("recurring run", what))
    if result.next_fire:
        rows.append(("next fire (UTC)", ", ".join(result.next_fire)))
    return rows


def human(result: DeployResult) -> str:
    rows = _rows(result)
    width = max(len(k) for k, _ in rows)
    head = "plan (dry run, nothing changed):" if result.dry_run else ""
    lines = [head] if head else []
    if result.dry_run:
        lines.extend(f"  - {step}" for step in result.plan)
    lines.extend(f"{k.ljust(width)}  {v}" for k, v in rows)
    return "\n".join(lines)


def markdown(results: Sequence[DeployResult], *, title: str = "kfp-ci deploy") -> str:
    parts = [f"### {title}" + (" (dry run)" if any(r.dry_run for r in results) else "")]
    for result in results:
        parts.append("")
        parts.append("| | |")
        parts.append("|---|---|")
        for key, value in _rows(result):
            if key == "run" and result.run_url and result.run_id:
                value = f"[{result.run_id}]({result.run_url})"
            parts.append(f"| {key} | {value.replace('|', '/')} |")
        graph = mermaid_dag(result.dag)
        if graph:
            parts.append("")
            parts.append(f"<details><summary>{result.pipeline} DAG</summary>\n\n{graph}\n\n</details>")
    return "\n".join(parts)


def emit(results: Sequence[DeployResult], output: str, *, title: str = "kfp-ci deploy") -> None:
    """Print the results in the chosen format and write GitHub outputs and job summary when there."""
    if output == "json":
        data: Any = [r.to_json() for r in results]
        _console.out(json.dumps(data[0] if len(data) == 1 else data, indent=2, default=str))
    else:
        for index, result in enumerate(results):
            if index:
                _console.out("")
            _console.out(human(result))
    if results:
        # The single-value outputs describe the last pipeline deployed (one pipeline per step is the usual
        # shape); `results` holds every pipeline, in order.
        outputs = results[-1].outputs()
        outputs["results"] = json.dumps([r.result_entry() for r in results], separators=(",", ":"))
        github.set_outputs(outputs)
        github.append_summary(markdown(results, title=title))


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S")
