"""What changed between two compiled pipelines (KFP v2 IR), as Markdown for a pull request's job summary.

Pure functions over parsed YAML: :func:`diff_specs` compares the top-level steps (tasks of the root DAG, with
their component, container and inputs) and the pipeline parameters; :func:`summary_markdown` renders one
pipeline's DAG as Mermaid plus that diff. Nothing here touches the network or the kfp SDK.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kfp_ci._yaml import load_docs
from kfp_ci.deploy._report import dag_of, mermaid_dag

__all__ = ["PipelineDiff", "diff_specs", "load_spec", "summary_markdown"]


@dataclass(slots=True)
class PipelineDiff:
    """Added, removed and changed steps and parameters of one pipeline (names sorted)."""

    added_steps: list[str] = field(default_factory=list)
    removed_steps: list[str] = field(default_factory=list)
    changed_steps: dict[str, list[str]] = field(default_factory=dict)
    """step -> what changed in it (component, image, command, inputs, dependencies)"""
    added_params: list[str] = field(default_factory=list)
    removed_params: list[str] = field(default_factory=list)
    changed_params: dict[str, str] = field(default_factory=dict)
    """parameter -> 'old -> new' (type and default)"""

    @property
    def empty(self) -> bool:
        return not (self.added_steps or self.removed_steps or self.changed_steps or self.added_params
                    or self.removed_params or self.changed_params)


def load_spec(text: str) -> dict[str, Any]:
    """The pipeline spec from compiled YAML (the first document; a platform-spec document may follow)."""
    for document in load_docs(text):
        if isinstance(document, Mapping):
            if "pipeline_spec" in document and "root" not in document:
                return dict(document["pipeline_spec"])
            return dict(document)
    return {}


def _tasks(spec: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    tasks = ((spec.get("root") or {}).get("dag") or {}).get("tasks") or {}
    return {str(name): task or {} for name, task in tasks.items()}


def _component_of(spec: Mapping[str, Any], task: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = ((task.get("componentRef") or {}).get("name")) or ""
    return (spec.get("components") or {}).get(ref) or {}


def _container_of(spec: Mapping[str, Any], component: Mapping[str, Any]) -> Mapping[str, Any]:
    label = component.get("executorLabel") or ""
    executors = ((spec.get("deploymentSpec") or {}).get("executors") or {})
    return (executors.get(label) or {}).get("container") or {}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _step_changes(old_spec: Mapping[str, Any], new_spec: Mapping[str, Any], old: Mapping[str, Any],
                  new: Mapping[str, Any]) -> list[str]:
    changes: list[str] = []
    old_component, new_component = _component_of(old_spec, old), _component_of(new_spec, new)
    old_container, new_container = _container_of(old_spec, old_component), _container_of(new_spec, new_component)
    if old_container.get("image") != new_container.get("image"):
        changes.append(f"image {old_container.get('image')} -> {new_container.get('image')}")
    if (_canonical(old_container.get("command")) != _canonical(new_container.get("command"))
            or _canonical(old_container.get("args")) != _canonical(new_container.get("args"))):
        changes.append("code")
    if _canonical({k: v for k, v in old_container.items() if k not in ("image", "command", "args")}) != _canonical(
            {k: v for k, v in new_container.items() if k not in ("image", "command", "args")}):
        changes.append("resources or env")
    if (_canonical(old_component.get("inputDefinitions")) != _canonical(new_component.get("inputDefinitions"))
            or _canonical(old_component.get("outputDefinitions"))
            != _canonical(new_component.get("outputDefinitions"))):
        changes.append("interface")
    if _canonical(old.get("inputs")) != _canonical(new.get("inputs")):
        changes.append("inputs")
    if sorted(old.get("dependentTasks") or []) != sorted(new.get("dependentTasks") or []):
        changes.append("dependencies")
    rest = ("componentRef", "inputs", "dependentTasks", "taskInfo")
    if _canonical({k: v for k, v in old.items() if k not in rest}) != _canonical(
            {k: v for k, v in new.items() if k not in rest}):
        changes.append("options")
    return changes


def _params(spec: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    params = ((spec.get("root") or {}).get("inputDefinitions") or {}).get("parameters") or {}
    return {str(name): value or {} for name, value in params.items()}


def _describe_param(param: Mapping[str, Any]) -> str:
    kind = str(param.get("parameterType") or "?")
    if "defaultValue" in param:
        default = param["defaultValue"]
        if kind == "NUMBER_INTEGER" and isinstance(default, float) and default.is_integer():
            default = int(default)  # kfp writes an int default as 1.0
        return f"{kind} = {_canonical(default)}"
    return f"{kind} (required)" if not param.get("isOptional") else kind


def diff_specs(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> PipelineDiff:
    """Compare the base branch's compiled spec (``None``: the pipeline is new) with the head's."""
    old = old or {}
    diff = PipelineDiff()
    old_tasks, new_tasks = _tasks(old), _tasks(new)
    diff.added_steps = sorted(set(new_tasks) - set(old_tasks))
    diff.removed_steps = sorted(set(old_tasks) - set(new_tasks))
    for name in sorted(set(old_tasks) & set(new_tasks)):
        changes = _step_changes(old, new, old_tasks[name], new_tasks[name])
        if changes:
            diff.changed_steps[name] = changes
    old_params, new_params = _params(old), _params(new)
    diff.added_params = sorted(set(new_params) - set(old_params))
    diff.removed_params = sorted(set(old_params) - set(new_params))
    for name in sorted(set(old_params) & set(new_params)):
        before, after = _describe_param(old_params[name]), _describe_param(new_params[name])
        if before != after:
            diff.changed_params[name] = f"{before} -> {after}"
    return diff


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _diff_rows(diff: PipelineDiff, new: Mapping[str, Any]) -> list[str]:
    new_params = _params(new)
    rows = ["| | kind | name | detail |", "|---|---|---|---|"]
    rows += [f"| + | step | `{_cell(s)}` | added |" for s in diff.added_steps]
    rows += [f"| - | step | `{_cell(s)}` | removed |" for s in diff.removed_steps]
    rows += [f"| ~ | step | `{_cell(s)}` | {_cell(', '.join(c))} |" for s, c in diff.changed_steps.items()]
    rows += [f"| + | parameter | `{_cell(p)}` | {_cell(_describe_param(new_params[p]))} |" for p in diff.added_params]
    rows += [f"| - | parameter | `{_cell(p)}` | removed |" for p in diff.removed_params]
    rows += [f"| ~ | parameter | `{_cell(p)}` | {_cell(c)} |" for p, c in diff.changed_params.items()]
    return rows


def summary_markdown(name: str, path: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None,
                     *, base: str) -> str:
    """One pipeline's section: its DAG and what changed against ``base`` (``None`` specs: missing there)."""
    lines = [f"### Pipeline `{name}` (`{path}`)", ""]
    if new is None:
        lines.append(f"Removed: the compiled file is gone (it exists on `{base}`)." if old is not None
                     else "No compiled file on this branch or on the base.")
        return "\n".join(lines) + "\n"
    if old is None:
        lines.append(f"New pipeline (not on `{base}`).")
    diff = diff_specs(old, new)
    if old is not None and diff.empty:
        lines.append(f"No change in steps or parameters against `{base}`.")
    elif not diff.empty:
        lines.append(f"Changes against `{base}`:")
        lines.append("")
        lines.extend(_diff_rows(diff, new))
    graph = mermaid_dag(dag_of(new))
    if graph:
        lines += ["", graph]
    return "\n".join(lines) + "\n"


def summary_document(sections: Sequence[str]) -> str:
    """The whole job summary: a title and one section per pipeline."""
    body = "\n".join(sections) if sections else "No compiled pipelines found.\n"
    return "## Kubeflow pipelines\n\n" + body
