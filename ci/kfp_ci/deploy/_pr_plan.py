"""``kfp-ci plan``: what merging a pull request would deploy, per pipeline and per target, as Markdown.

For each pipeline of ``[tool.kfp-ci]`` (or each compiled file given) the plan compares the head's compiled
package with what the target holds now:

- the base branch's committed compiled file (``git show <base>:<file>``), always, offline;
- with a host (``--host`` or ``[tool.kfp-ci] host``), also the pipeline's latest version on that KFP (read-only
  GET requests): its recorded content hash says whether a merge uploads a new version or nothing.

It reports the action (new pipeline, new version, unchanged, removed), the steps added, removed and changed
(with images), the pipeline parameters and defaults changed, the run parameters and schedule of ``[tool.kfp-ci]``
changed, and the DAG with the changed steps marked. :func:`plan_markdown` renders it; the PR comment carries the
hidden marker :data:`PLAN_MARKER` so one comment is found and edited on every push.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfp_ci import _console, github
from kfp_ci.config import PipelineConfig, Settings, load_settings
from kfp_ci.deploy._pipeline_diff import PipelineDiff, diff_specs, load_spec
from kfp_ci.deploy._report import dag_of
from kfp_ci.deploy._versioning import content_hash, hash_from_description
from kfp_ci.errors import KfpCiError, UsageError

__all__ = ["PLAN_MARKER", "PipelinePlan", "TargetPlan", "plan_command", "plan_markdown", "plan_pipelines"]

PLAN_MARKER = "<!-- kfp-ci-plan -->"
_CONFIG_KEYS = ("parameters", "schedule", "every", "latest", "experiment")


@dataclass(slots=True)
class TargetPlan:
    """What a merge does to one target (the base branch, or a KFP host)."""

    target: str
    action: str
    """new pipeline | new version | unchanged | removed | missing"""
    diff: PipelineDiff | None = None
    other_changes: list[str] = field(default_factory=list)
    """package changes outside steps and parameters (top-level sections of the IR)"""
    detail: str = ""


@dataclass(slots=True)
class PipelinePlan:
    """One pipeline: its compiled file, content hash, DAG, the targets and the [tool.kfp-ci] changes."""

    name: str
    path: str
    content_hash: str | None
    dag: dict[str, list[str]] = field(default_factory=dict)
    targets: list[TargetPlan] = field(default_factory=list)
    config_changes: list[str] = field(default_factory=list)

    @property
    def changed_steps(self) -> set[str]:
        steps: set[str] = set()
        for target in self.targets:
            if target.diff is not None:
                steps.update(target.diff.added_steps)
                steps.update(target.diff.changed_steps)
        return steps

    @property
    def added_steps(self) -> set[str]:
        return {s for t in self.targets if t.diff is not None for s in t.diff.added_steps}


# ------------------------------------------------------------------------------------------ comparing
def _git_show(base: str, path: Path) -> str | None:
    for ref in (f"origin/{base}", base):
        found = subprocess.run(["git", "show", f"{ref}:./{path.name}"], cwd=path.parent, capture_output=True,
                               text=True, check=False)
        if found.returncode == 0:
            return found.stdout
    return None


def _other_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    import json

    keys = sorted(set(old) | set(new))
    return [k for k in keys if json.dumps(old.get(k), sort_keys=True, default=str)
            != json.dumps(new.get(k), sort_keys=True, default=str)]


def compare(target: str, old: Mapping[str, Any] | None, old_hash: str | None, new: Mapping[str, Any] | None,
            new_hash: str | None) -> TargetPlan:
    """The action and diff of deploying ``new`` where ``old`` is now (``None``: absent)."""
    if new is None:
        return TargetPlan(target, "removed" if old is not None else "missing")
    if old is None:
        return TargetPlan(target, "new pipeline", diff_specs(None, new))
    if old_hash is not None and old_hash == new_hash:
        return TargetPlan(target, "unchanged", diff_specs(old, new))
    diff = diff_specs(old, new)
    plan = TargetPlan(target, "new version", diff)
    if diff.empty:
        plan.other_changes = [k for k in _other_changes(old, new) if k != "root"] or ["root"]
    return plan


def _config_of(settings_pipelines: Sequence[PipelineConfig], name: str | None) -> PipelineConfig | None:
    return next((c for c in settings_pipelines if name and c.name == name), None)


def _base_settings(project_file: Path | None, base: str) -> Sequence[PipelineConfig] | None:
    if project_file is None:
        return None
    text = _git_show(base, project_file)
    if text is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "pyproject.toml"
        copy.write_text(text, encoding="utf-8")
        try:
            return load_settings({}, env={}, config_file=copy).pipelines
        except KfpCiError:
            return None


def config_changes(old: PipelineConfig | None, new: PipelineConfig | None) -> list[str]:
    """Run parameters and schedule of ``[tool.kfp-ci]`` that changed (not in the compiled file)."""
    if old is None or new is None:
        return []
    changes = []
    old_params, new_params = dict(old.parameters), dict(new.parameters)
    for key in sorted(set(old_params) | set(new_params)):
        before, after = old_params.get(key, "(unset)"), new_params.get(key, "(unset)")
        if before != after:
            changes.append(f"run parameter `{key}`: {before!r} -> {after!r}")
    for key in _CONFIG_KEYS[1:]:
        before, after = getattr(old, key), getattr(new, key)
        if before != after:
            changes.append(f"{key}: {before or '-'} -> {after or '-'}")
    return changes


def _server_state(settings: Settings, name: str) -> tuple[dict[str, Any] | None, str | None, str]:
    """The latest version on the host: (spec, recorded content hash, its name), read-only."""
    from kfp_ci.auth import client_from_settings
    from kfp_ci.deploy._api import Api

    api = Api(client_from_settings(settings), settings.namespace)
    pipeline_id = api.find_pipeline(name, settings.namespace)
    if pipeline_id is None:
        return None, None, ""
    latest = api.latest_version(pipeline_id)
    if latest is None:
        return None, None, ""
    spec = latest.pipeline_spec or api.get_version(pipeline_id, latest.id).pipeline_spec or {}
    if isinstance(spec, Mapping) and "pipeline_spec" in spec and "root" not in spec:
        spec = spec["pipeline_spec"]
    return dict(spec), hash_from_description(latest.description), latest.name


def _compiled_files(settings: Settings, names: Sequence[str]) -> list[tuple[str | None, Path, PipelineConfig | None]]:
    files: list[tuple[str | None, Path, PipelineConfig | None]] = []
    configured = {c.name: c for c in settings.pipelines if c.name}
    if names:
        for name in names:
            if name in configured:
                config = configured[name]
                output = config.output or (settings.out_dir or config.source_file.parent) / f"{name}.yaml"
                files.append((name, output, config))
            elif name.endswith((".yaml", ".yml", ".json")):
                files.append((None, Path(name), None))
            else:
                raise UsageError(f"{name}: not a compiled pipeline (.yaml) or a pipeline from [tool.kfp-ci]")
        return files
    for config in settings.pipelines:
        found = config.output
        if found is None and config.name:
            found = (settings.out_dir or config.source_file.parent) / f"{config.name}.yaml"
        if found is not None:
            files.append((config.name, found, config))
    return files


def plan_pipelines(settings: Settings, *, base: str, names: Sequence[str] = (),
                   with_server: bool = False) -> list[PipelinePlan]:
    """Plan every configured pipeline (or the ``names`` given) against ``base`` and, optionally, the host."""
    base_configs = _base_settings(settings.project_file, base)
    plans = []
    for name, path, config in _compiled_files(settings, names):
        path = path.resolve()
        new_text = path.read_text(encoding="utf-8") if path.is_file() else None
        new = load_spec(new_text) if new_text is not None else None
        new_hash = content_hash(new_text.encode("utf-8")) if new_text is not None else None
        old_text = _git_show(base, path) if path.parent.is_dir() else None
        old = load_spec(old_text) if old_text is not None else None
        old_hash = content_hash(old_text.encode("utf-8")) if old_text is not None else None
        label = name or str(((new or old or {}).get("pipelineInfo") or {}).get("name") or path.stem)
        plan = PipelinePlan(label, _shown(path), new_hash, dag=dag_of(new) if new else {})
        plan.targets.append(compare(f"base `{base}`", old, old_hash, new, new_hash))
        if with_server:
            host = settings.host or ""
            server_spec, server_hash, version = _server_state(settings, label)
            target = compare(f"KFP `{host}`", server_spec, server_hash, new, new_hash)
            if version:
                target.detail = f"latest version `{version}`"
            plan.targets.append(target)
        if base_configs is not None:
            plan.config_changes = config_changes(_config_of(base_configs, name), config)
        plans.append(plan)
    return plans


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# ------------------------------------------------------------------------------------------ rendering
def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _node(name: str) -> str:
    import re

    return "t_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def marked_dag(plan: PipelinePlan) -> str:
    """Mermaid flowchart of the head's DAG, added steps and changed steps styled (and labelled) apart."""
    if not plan.dag:
        return ""
    added, changed = plan.added_steps, plan.changed_steps - plan.added_steps
    lines = ["```mermaid", "graph TD"]
    for name in plan.dag:
        label = name.replace('"', "'") + (" (added)" if name in added else " (changed)" if name in changed else "")
        lines.append(f'  {_node(name)}["{label}"]')
    for name, deps in plan.dag.items():
        lines.extend(f"  {_node(dep)} --> {_node(name)}" for dep in deps)
    if added:
        lines.append("  classDef added fill:#d4f8d4,stroke:#2a7a2a")
        lines.append(f"  class {','.join(_node(s) for s in sorted(added))} added")
    if changed:
        lines.append("  classDef changed fill:#fff3c4,stroke:#a07800")
        lines.append(f"  class {','.join(_node(s) for s in sorted(changed))} changed")
    lines.append("```")
    return "\n".join(lines)


def _diff_rows(diff: PipelineDiff, new_params: Mapping[str, str]) -> list[str]:
    rows = [f"| + | step | `{_cell(s)}` | added |" for s in diff.added_steps]
    rows += [f"| - | step | `{_cell(s)}` | removed |" for s in diff.removed_steps]
    rows += [f"| ~ | step | `{_cell(s)}` | {_cell(', '.join(c))} |" for s, c in diff.changed_steps.items()]
    rows += [f"| + | parameter | `{_cell(p)}` | {_cell(new_params.get(p, 'added'))} |" for p in diff.added_params]
    rows += [f"| - | parameter | `{_cell(p)}` | removed |" for p in diff.removed_params]
    rows += [f"| ~ | parameter | `{_cell(p)}` | {_cell(c)} |" for p, c in diff.changed_params.items()]
    return rows


def _param_descriptions(plan: PipelinePlan, path: Path) -> dict[str, str]:
    from kfp_ci.deploy._pipeline_diff import _describe_param, _params

    try:
        spec = load_spec(path.read_text(encoding="utf-8"))
    except OSError:
        return {}
    return {name: _describe_param(value) for name, value in _params(spec).items()}


def plan_markdown(plans: Sequence[PipelinePlan], *, title: str = "kfp-ci plan") -> str:
    """The plan as Markdown: one section per pipeline, a line per target, the changes, the marked DAG."""
    parts = [PLAN_MARKER, f"## {title}: what merging this pull request deploys", ""]
    if not plans:
        parts.append("No compiled pipelines found.")
    for plan in plans:
        hash_text = f", `sha256:{plan.content_hash[:12]}`" if plan.content_hash else ""
        parts += [f"### Pipeline `{plan.name}` (`{plan.path}`{hash_text})", ""]
        parts += ["| target | a merge would | detail |", "|---|---|---|"]
        for target in plan.targets:
            detail = target.detail
            if target.other_changes:
                detail = (detail + "; " if detail else "") + "package changed outside steps and parameters: " + \
                    ", ".join(f"`{k}`" for k in target.other_changes)
            elif target.action == "new version" and target.diff is not None and target.diff.empty:
                detail = (detail + "; " if detail else "") + "package changed"
            parts.append(f"| {_cell(target.target)} | **{target.action}** | {_cell(detail) or '-'} |")
        rows: list[str] = []
        seen: set[str] = set()
        new_params = _param_descriptions(plan, Path(plan.path))
        for target in plan.targets:
            if target.diff is None or target.action in ("unchanged", "new pipeline"):
                continue
            for row in _diff_rows(target.diff, new_params):
                if row not in seen:
                    seen.add(row)
                    rows.append(row)
        rows += [f"| ~ | config | {_cell(change)} | [tool.kfp-ci] |" for change in plan.config_changes]
        parts.append("")
        if rows:
            parts += ["| | kind | name | detail |", "|---|---|---|---|", *rows]
        elif all(t.action == "unchanged" for t in plan.targets):
            parts.append("No change: a merge uploads no version and starts no run.")
        graph = marked_dag(plan)
        if graph:
            parts += ["", "<details><summary>DAG (changed steps marked)</summary>", "", graph, "", "</details>"]
        parts.append("")
    return "\n".join(parts).rstrip("\n") + "\n"


# ------------------------------------------------------------------------------------------ command
def plan_command(settings: Settings, **kwargs: Any) -> int:
    """``kfp-ci plan``: print the plan, write it to the job summary, and with ``--comment`` post it on the PR."""
    base = kwargs.get("base") or ""
    if not base:
        raise UsageError("--base is required: the branch the pull request merges into (e.g. main)")
    with_server = bool(kwargs.get("against_host"))
    if with_server and not settings.host:
        raise UsageError("--against-host needs a host: --host, KFP_CI_HOST or [tool.kfp-ci] host")
    plans = plan_pipelines(settings, base=base, names=tuple(kwargs.get("pipelines") or ()), with_server=with_server)
    document = plan_markdown(plans)
    _console.out(document)
    github.append_summary(document)
    if kwargs.get("comment"):
        outcome = github.upsert_pr_comment(document, marker=PLAN_MARKER)
        if outcome.action in ("created", "updated"):
            _console.info(f"plan comment {outcome.action}: {outcome.url}")
        else:
            github.annotation("notice", f"plan not posted on the pull request: {outcome.reason}; "
                              "it is in the job summary", title="kfp-ci plan", force=github.enabled())
            _console.info(f"plan not posted: {outcome.reason}")
    return 0
