"""``kfp-ci gate RUN_ID``: the gate as a command (settings, table, job summary, exit code)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kfp_ci import _console, github
from kfp_ci.auth import client_from_settings
from kfp_ci.config import PipelineConfig, Settings
from kfp_ci.errors import GateFailed, UsageError
from kfp_ci.gate._render import render_markdown, render_table
from kfp_ci.gate._rules import evaluate_gate, parse_regressions, parse_requirement

__all__ = ["HISTORY_RUNS", "gate_command"]


def _config_for(settings: Settings, pipeline: str | None) -> PipelineConfig | None:
    if not pipeline:
        return None
    for config in settings.pipelines:
        if config.name == pipeline or (config.name is None and config.function == pipeline):
            return config
    return None


HISTORY_RUNS = 8


def gate_command(
    settings: Settings,
    run_id: str,
    pipeline: str | None = None,
    require: Sequence[str] = (),
    baseline: str | None = None,
    max_regression: Sequence[str] = (),
    output: str = "text",
    client: Any = None,
) -> int:
    """``kfp-ci gate RUN_ID``: print the table (text or JSON), write the GitHub job summary, exit 1 on failure.

    ``client``: an existing (logged-in) :class:`kfp_ci.client.Client` to reuse, e.g. the one ``deploy`` used;
    by default one is built from ``settings``."""
    config = _config_for(settings, pipeline)
    explicit = bool(require or max_regression or baseline)
    if pipeline and config is None and not explicit:
        names = ", ".join(c.name or c.source for c in settings.pipelines) or "none declared"
        raise UsageError(f"pipeline {pipeline!r} is not in [tool.kfp-ci] (pipelines: {names})")
    requirements = tuple(require) or (config.require if config else ())
    regressions: Iterable[str] | Mapping[str, float] = tuple(max_regression) or (
        config.max_regression if config else {})
    base = baseline or (config.baseline if config else None)
    # Validate everything before any request.
    parsed = tuple(parse_requirement(r) for r in requirements)
    parse_regressions(regressions)
    if base is not None and not base.strip():
        raise UsageError("--baseline is empty: give last-success or a run id")

    owned = client is None
    if owned:
        client = client_from_settings(settings)
    try:
        result = evaluate_gate(client, run_id, require=parsed, baseline=base, max_regression=regressions,
                               history=HISTORY_RUNS if github.enabled() else 0)
    finally:
        close = getattr(client, "close", None)
        if owned and callable(close):
            close()
    if output == "json":
        _console.out(json.dumps(result.to_json(), indent=2))
    else:
        _console.out(render_table(result))
    github.append_summary(render_markdown(result))
    if not result.passed:
        raise GateFailed(result.failure_message())
    return 0
