"""What a gate shows: the metrics table (text), and the Markdown job summary with a Mermaid chart per metric."""

from __future__ import annotations

import json
from collections.abc import Sequence

from kfp_ci.gate._rules import GateResult, MetricRow, Requirement, fmt_value

__all__ = ["mermaid_chart", "render_markdown", "render_table"]

_HEADERS = ("metric", "value", "threshold", "baseline", "verdict")


def _cells(row: MetricRow) -> tuple[str, ...]:
    return (row.metric, fmt_value(row.value), row.threshold_text, row.baseline_text, row.verdict)


def render_table(result: GateResult) -> str:
    """The plain-text table a terminal shows."""
    rows = [_HEADERS, *(_cells(r) for r in result.rows)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADERS))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    head = f"gate for run {result.run_id} (metrics from {result.metrics.source})"
    if result.baseline_run_id:
        head += f", baseline run {result.baseline_run_id}"
    out = [head, *lines]
    if result.baseline_note:
        out.append(f"note: {result.baseline_note}")
    out.append("PASSED" if result.passed else "FAILED")
    return "\n".join(out)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def mermaid_chart(metric: str, points: Sequence[tuple[str, float | None]],
                  requirements: Sequence[Requirement] = ()) -> str:
    """A Mermaid ``xychart-beta`` of ``metric`` over runs (oldest first), with each threshold as a flat line."""
    known = [(rid, v) for rid, v in points if v is not None]
    if not known:
        return ""
    labels = ", ".join(json.dumps(rid[:8]) for rid, _ in known)
    values = [v for _, v in known]
    lines = [f"    line [{', '.join(fmt_value(v) for v in values)}]"]
    bounds = list(values)
    for req in requirements:
        lines.append(f"    line [{', '.join(fmt_value(req.threshold) for _ in known)}]")
        bounds.append(req.threshold)
    low, high = min(bounds), max(bounds)
    pad = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
    title = json.dumps(f"{metric} over the last {len(known)} run{'s' if len(known) != 1 else ''}")
    return "\n".join([
        "```mermaid",
        "xychart-beta",
        f"    title {title}",
        f"    x-axis [{labels}]",
        f"    y-axis {json.dumps(metric)} {fmt_value(round(low - pad, 6))} --> {fmt_value(round(high + pad, 6))}",
        *lines,
        "```",
    ])


def render_markdown(result: GateResult) -> str:
    """The GitHub job summary: the table, then one chart per gated metric."""
    verdict = "passed" if result.passed else "FAILED"
    out = [f"### kfp-ci gate: run `{result.run_id}` {verdict}", ""]
    source = f"Metrics from {result.metrics.source}"
    if result.baseline_run_id:
        source += f"; baseline run `{result.baseline_run_id}`"
    if result.baseline_note:
        source += f"; {result.baseline_note}"
    out += [source + ".", "", "| " + " | ".join(_HEADERS) + " |", "|" + "---|" * len(_HEADERS)]
    for row in result.rows:
        cells = list(_cells(row))
        cells[-1] = ("✅ " if row.passed else "❌ ") + cells[-1]
        out.append("| " + " | ".join(_md(c) for c in cells) + " |")
    for row in result.rows:
        chart = mermaid_chart(row.metric, result.history.get(row.metric, ()), row.requirements)
        if chart:
            out += ["", chart]
    return "\n".join(out) + "\n"
