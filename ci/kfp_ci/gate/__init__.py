"""``kfp-ci gate``: fail CI when a trained model is not good enough or got worse.

A gate reads the scalar metrics a finished run logged (:mod:`._metrics`: KFP v1 ``run.metrics``; :mod:`._mlmd`:
KFP v2 ``Metrics.log_metric`` through ML Metadata's gRPC-web route), checks them against requirements and a
baseline (:mod:`._rules`), and shows the verdict as a table and a Markdown job summary (:mod:`._render`).
:mod:`._command` is ``kfp-ci gate``. Library use (what ``kfp-ci deploy --require ...`` calls)::

    result = evaluate_gate(client, run_id, require=["r2>=0.8"], baseline="last-success",
                           max_regression={"r2": 0.02})
    result.passed, result.rows, result.failure_message()
"""

from __future__ import annotations

from kfp_ci.gate._command import gate_command
from kfp_ci.gate._metrics import MetricValue, RunMetrics
from kfp_ci.gate._render import mermaid_chart, render_markdown, render_table
from kfp_ci.gate._rules import (
    GateResult,
    MetricRow,
    Regression,
    Requirement,
    evaluate_gate,
    lower_is_better,
    parse_regressions,
    parse_requirement,
    read_run_metrics,
)

__all__ = [
    "GateResult",
    "MetricRow",
    "MetricValue",
    "Regression",
    "Requirement",
    "RunMetrics",
    "evaluate_gate",
    "gate_command",
    "lower_is_better",
    "mermaid_chart",
    "parse_regressions",
    "parse_requirement",
    "read_run_metrics",
    "render_markdown",
    "render_table",
]
