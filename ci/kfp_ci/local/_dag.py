"""A run's graph for the page: the steps of a pipeline (KFP v2 IR or a KFP v1 Argo workflow), laid out in layers
and drawn as SVG with each step coloured by its state.

Nested DAGs (``dsl.Condition``, ``dsl.ParallelFor``, sub-pipelines, exit handlers) are flattened: the group is a
node of its own (dashed), its steps hang below it, and a step is named by its path (``group/step``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any

NODE_W = 190
NODE_H = 40
GAP_X = 30
GAP_Y = 46
PAD = 16

#: Fill and stroke per state (the page's legend uses the same).
COLOURS: dict[str, tuple[str, str]] = {
    "SUCCEEDED": ("#e3f4e6", "#17702a"),
    "FAILED": ("#fbe4e6", "#b00020"),
    "RUNNING": ("#fff3d6", "#a86a00"),
    "PENDING": ("#f1f1f1", "#8a8a8a"),
    "CANCELED": ("#ececec", "#555555"),
    "SKIPPED": ("#f7f7f7", "#b5b5b5"),
    "": ("#ffffff", "#9a9a9a"),
}


@dataclass(slots=True)
class Node:
    """One step (or group) of the graph; ``key`` is its path, ``label`` what the page shows."""

    key: str
    label: str
    kind: str = "task"  # task | condition | loop | group | exit
    image: str = ""
    deps: list[str] = field(default_factory=list)
    parent: str = ""
    state: str = ""
    level: int = 0
    column: int = 0


def _v2_image(spec: dict[str, Any], component: str) -> str:
    comp = (spec.get("components") or {}).get(component) or {}
    label = comp.get("executorLabel") or ""
    executors = ((spec.get("deploymentSpec") or {}).get("executors") or {})
    executor = executors.get(label) or {}
    container = executor.get("container") or {}
    return str(container.get("image") or "")


def _v2_kind(task: dict[str, Any], comp: dict[str, Any]) -> str:
    if task.get("iteratorPolicy") or task.get("parameterIterator") or task.get("artifactIterator"):
        return "loop"
    if (task.get("triggerPolicy") or {}).get("condition"):
        return "condition"
    if "dag" in comp:
        return "group"
    return "task"


def _v2_nodes(spec: dict[str, Any], dag: dict[str, Any], prefix: str, parent: str, out: list[Node],
              depth: int) -> None:
    components = spec.get("components") or {}
    for name, task in sorted((dag.get("tasks") or {}).items()):
        if not isinstance(task, dict):
            continue
        key = f"{prefix}{name}"
        comp_name = str((task.get("componentRef") or {}).get("name") or "")
        comp = components.get(comp_name) or {}
        kind = _v2_kind(task, comp)
        deps = [f"{prefix}{d}" for d in task.get("dependentTasks") or [] if isinstance(d, str)]
        if not deps and parent:
            deps = [parent]
        label = str((task.get("taskInfo") or {}).get("name") or name)
        if kind == "group" and label.startswith("condition-"):
            kind = "condition"
        if kind == "group" and label.startswith("for-loop-"):
            kind = "loop"
        if kind == "group" and label.startswith("exit-handler-"):
            kind = "exit"
        out.append(Node(key, label, kind, _v2_image(spec, comp_name), deps, parent))
        inner = comp.get("dag")
        if isinstance(inner, dict) and depth < 8:
            _v2_nodes(spec, inner, f"{key}/", key, out, depth + 1)


def _argo_nodes(workflow: dict[str, Any], template: str, prefix: str, parent: str, out: list[Node],
                depth: int) -> None:
    templates = {t.get("name"): t for t in (workflow.get("spec") or {}).get("templates") or [] if isinstance(t, dict)}
    tmpl = templates.get(template) or {}
    for task in (tmpl.get("dag") or {}).get("tasks") or []:
        if not isinstance(task, dict) or not task.get("name"):
            continue
        name = str(task["name"])
        key = f"{prefix}{name}"
        target = templates.get(task.get("template")) or {}
        deps = [f"{prefix}{d}" for d in task.get("dependencies") or [] if isinstance(d, str)]
        if not deps and parent:
            deps = [parent]
        if task.get("withItems") or task.get("withParam"):
            kind = "loop"
        elif "dag" in target:
            kind = "condition" if name.startswith("condition-") else "group"
        else:
            kind = "task"
        image = str((target.get("container") or {}).get("image") or "")
        out.append(Node(key, name, kind, image, deps, parent))
        if "dag" in target and depth < 8:
            _argo_nodes(workflow, str(task.get("template")), f"{key}/", key, out, depth + 1)


def graph_of(spec: dict[str, Any]) -> list[Node]:
    """The steps of ``spec``: KFP v2 IR (``root.dag``) or an Argo Workflow (``spec.templates``)."""
    nodes: list[Node] = []
    if not isinstance(spec, dict):
        return nodes
    root = spec.get("root")
    if isinstance(root, dict) and isinstance(root.get("dag"), dict):
        _v2_nodes(spec, root["dag"], "", "", nodes, 0)
        handler = None
    elif spec.get("kind") == "Workflow":
        wf_spec = spec.get("spec") or {}
        _argo_nodes(spec, str(wf_spec.get("entrypoint") or ""), "", "", nodes, 0)
        handler = wf_spec.get("onExit")
        if handler:
            nodes.append(Node(str(handler), str(handler), "exit", "", [], ""))
    return nodes


def layout(nodes: list[Node]) -> tuple[int, int]:
    """Assign each node a layer (longest path from a root) and a column; returns the drawing's width, height."""
    by_key = {n.key: n for n in nodes}
    done: dict[str, int] = {}

    def level(n: Node, seen: frozenset[str]) -> int:
        if n.key in done:
            return done[n.key]
        deps = [by_key[d] for d in n.deps if d in by_key and d not in seen]
        value = 1 + max((level(d, seen | {n.key}) for d in deps), default=-1)
        done[n.key] = value
        return value

    rows: dict[int, list[Node]] = {}
    for n in nodes:
        n.level = level(n, frozenset())
        rows.setdefault(n.level, []).append(n)
    width = 1
    for lvl in sorted(rows):  # each layer ordered by where its steps' inputs sit (fewer crossing edges)
        row = rows[lvl]

        def centre(n: Node) -> float:
            cols = [by_key[d].column for d in n.deps if d in by_key and by_key[d].level < n.level]
            return sum(cols) / len(cols) if cols else -1.0
        row.sort(key=lambda n: (centre(n), n.key))
        for i, n in enumerate(row):
            n.column = i
        width = max(width, len(row))
    height = max(rows, default=0) + 1
    return (PAD * 2 + width * NODE_W + (width - 1) * GAP_X, PAD * 2 + height * NODE_H + (height - 1) * GAP_Y)


def _xy(n: Node) -> tuple[int, int]:
    return PAD + n.column * (NODE_W + GAP_X), PAD + n.level * (NODE_H + GAP_Y)


def _short(text: str, limit: int = 26) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def render_svg(nodes: list[Node], anchors: dict[str, str] | None = None) -> str:
    """The graph as inline SVG. ``anchors`` maps a node key to the id of its row in the page's task table."""
    if not nodes:
        return '<p class="muted" id="dag-empty">This pipeline has no steps to draw.</p>'
    width, height = layout(nodes)
    by_key = {n.key: n for n in nodes}
    edges = []
    for n in nodes:
        x2, y2 = _xy(n)
        for d in n.deps:
            dep = by_key.get(d)
            if dep is None:
                continue
            x1, y1 = _xy(dep)
            sx, sy, ex, ey = x1 + NODE_W // 2, y1 + NODE_H, x2 + NODE_W // 2, y2
            mid = (sy + ey) // 2
            dash = ' stroke-dasharray="4 3"' if d == n.parent else ""
            edges.append(f'<path d="M{sx},{sy} C{sx},{mid} {ex},{mid} {ex},{ey}" fill="none" stroke="#8c8c8c" '
                         f'stroke-width="1.4" marker-end="url(#arrow)"{dash}/>')
    boxes = []
    for n in nodes:
        x, y = _xy(n)
        state = n.state if n.state in COLOURS else ""
        fill, stroke = COLOURS[state]
        dash = ' stroke-dasharray="5 3"' if n.kind != "task" else ""
        kind = "" if n.kind == "task" else f"{n.kind}: "
        title = f"{n.key} ({n.state or 'not started'})" + (f" image {n.image}" if n.image else "")
        box = (f'<g class="node" data-task="{escape(n.key)}" data-state="{escape(n.state or "NONE")}">'
               f"<title>{escape(title)}</title>"
               f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="7" fill="{fill}" stroke="{stroke}" '
               f'stroke-width="1.6"{dash}/>'
               f'<text x="{x + 10}" y="{y + 17}" font-size="13" fill="#1f1f1f">{escape(_short(kind + n.label))}</text>'
               f'<text x="{x + 10}" y="{y + 32}" font-size="11" fill="{stroke}">{escape(n.state or "not started")}'
               "</text></g>")
        anchor = (anchors or {}).get(n.key)
        boxes.append(f'<a href="#{escape(anchor)}">{box}</a>' if anchor else box)
    return (f'<svg id="dag" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="pipeline graph">'
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
            'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#8c8c8c"/></marker></defs>'
            + "".join(edges) + "".join(boxes) + "</svg>")
