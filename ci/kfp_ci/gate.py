"""``kfp-ci gate``: fail CI when a trained model is not good enough or got worse.

A gate reads the scalar metrics a finished run logged (KFP v1: ``run.metrics``; KFP v2: ``Metrics.log_metric``
through ML Metadata, see :mod:`kfp_ci._metrics`) and checks them against

* requirements: ``r2>=0.8``, ``mse<=120`` (operators ``>=``, ``<=``, ``>``, ``<``, ``==``), and
* a baseline: ``last-success`` (the newest earlier SUCCEEDED run of the same pipeline in the same experiment)
  or a run id, with ``--max-regression METRIC=DELTA``: the largest allowed change for the worse.

Direction rule (which way is "worse"): a metric is lower-is-better when the first requirement on it uses
``<=`` or ``<`` (higher-is-better when it uses ``>=`` or ``>``); without a requirement, when its name
contains one of the words ``loss``, ``error``, ``err``, ``mse``, ``rmse``, ``mae``, ``mape``, ``msle``,
``latency``, ``cost`` (split at ``_``, ``-``, ``.``, ``/``: ``val_loss``, ``test-mae``); higher-is-better
otherwise (``r2``, ``accuracy``, ``auc``, ``f1`` ...). A regression is a
move in the worse direction larger than DELTA (absolute; ``5%`` means 5 % of the baseline value).
A baseline without ``--max-regression`` allows no regression at all on the required metrics.

Library use (what ``kfp-ci deploy --require ...`` calls)::

    result = evaluate_gate(client, run_id, require=["r2>=0.8"], baseline="last-success",
                           max_regression={"r2": 0.02})
    result.passed, result.rows, result.failure_message()
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kfp_ci import _console
from kfp_ci._metrics import RunMetrics, read_run_metrics
from kfp_ci._record import Record, asdict, field
from kfp_ci.config import PipelineConfig, Settings
from kfp_ci.errors import GateFailed, KfpCiError, UsageError

__all__ = [
    "GateResult",
    "MetricRow",
    "Regression",
    "Requirement",
    "evaluate_gate",
    "gate_command",
    "lower_is_better",
    "mermaid_chart",
    "parse_regressions",
    "parse_requirement",
    "render_markdown",
    "render_table",
]

_OPS = (">=", "<=", "==", ">", "<")
_LOWER_WORDS = frozenset({"loss", "error", "err", "mse", "rmse", "mae", "mape", "msle", "latency", "cost"})
_REQUIREMENT = re.compile(r"^\s*([A-Za-z_][\w./-]*)\s*(>=|<=|==|>|<)\s*(\S+)\s*$")
LAST_SUCCESS = "last-success"


# ------------------------------------------------------------------------------------------- parsing
class Requirement(Record):
    metric: str
    op: str
    threshold: float

    def holds(self, value: float) -> bool:
        if self.op == ">=":
            return value >= self.threshold
        if self.op == "<=":
            return value <= self.threshold
        if self.op == ">":
            return value > self.threshold
        if self.op == "<":
            return value < self.threshold
        return math.isclose(value, self.threshold, rel_tol=1e-9, abs_tol=1e-12)

    def __str__(self) -> str:
        return f"{self.op} {_fmt(self.threshold)}"


class Regression(Record):
    """The largest allowed change for the worse: ``delta`` absolute, or ``percent`` of the baseline."""

    metric: str
    delta: float
    percent: bool = False

    def allowed(self, baseline: float) -> float:
        return abs(baseline) * self.delta / 100.0 if self.percent else self.delta

    def __str__(self) -> str:
        return f"{_fmt(self.delta)}%" if self.percent else _fmt(self.delta)


def parse_requirement(text: str) -> Requirement:
    """``r2>=0.8`` -> Requirement('r2', '>=', 0.8); a clear UsageError otherwise."""
    match = _REQUIREMENT.match(text)
    if not match:
        raise UsageError(f"bad requirement {text!r}: write METRIC OP NUMBER with OP one of "
                         f"{', '.join(_OPS)} (e.g. 'r2>=0.8')")
    metric, op, raw = match.groups()
    try:
        threshold = float(raw)
    except ValueError:
        raise UsageError(f"bad requirement {text!r}: {raw!r} is not a number") from None
    if not math.isfinite(threshold):
        raise UsageError(f"bad requirement {text!r}: the threshold must be a finite number")
    return Requirement(metric, op, threshold)


def parse_regressions(items: Iterable[str] | Mapping[str, float] | None) -> dict[str, Regression]:
    """``["r2=0.02", "mse=5%"]`` or ``{"r2": 0.02}`` -> per-metric regression limits."""
    out: dict[str, Regression] = {}
    if not items:
        return out
    pairs: list[tuple[str, str]] = []
    if isinstance(items, Mapping):
        pairs = [(str(k), str(v)) for k, v in items.items()]
    else:
        for item in items:
            metric, sep, raw = str(item).partition("=")
            if not sep or not metric.strip():
                raise UsageError(f"bad --max-regression {item!r}: write METRIC=DELTA (e.g. r2=0.02 or mse=5%)")
            pairs.append((metric.strip(), raw.strip()))
    for metric, raw in pairs:
        percent = raw.endswith("%")
        try:
            delta = float(raw[:-1] if percent else raw)
        except ValueError:
            raise UsageError(f"bad --max-regression {metric}={raw}: {raw!r} is not a number") from None
        if not math.isfinite(delta) or delta < 0:
            raise UsageError(f"bad --max-regression {metric}={raw}: the delta must be a number >= 0")
        out[metric] = Regression(metric, delta, percent)
    return out


def lower_is_better(metric: str, requirements: Iterable[Requirement] = ()) -> bool:
    """The direction rule of the module docstring."""
    for req in requirements:
        if req.metric == metric and req.op in ("<=", "<"):
            return True
        if req.metric == metric and req.op in (">=", ">"):
            return False
    words = {w for w in re.split(r"[_\-./]+", metric.lower()) if w}
    return bool(words & _LOWER_WORDS)


# ------------------------------------------------------------------------------------------ evaluating
class MetricRow(Record):
    metric: str
    value: float | None
    requirements: tuple[Requirement, ...] = ()
    baseline: float | None = None
    max_regression: Regression | None = None
    lower_is_better: bool = False
    failures: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def threshold_text(self) -> str:
        return ", ".join(str(r) for r in self.requirements) or "-"

    @property
    def baseline_text(self) -> str:
        if self.baseline is None:
            return "-"
        text = _fmt(self.baseline)
        if self.max_regression is not None:
            if self.max_regression.delta == 0:
                text += " (no regression allowed)"
            else:
                sign = "+" if self.lower_is_better else "-"
                text += f" ({sign}{self.max_regression} allowed)"
        return text

    @property
    def verdict(self) -> str:
        if self.failures:
            return "FAIL: " + "; ".join(self.failures)
        return "pass" + (f" ({'; '.join(self.notes)})" if self.notes else "")


class GateResult(Record):
    run_id: str
    rows: tuple[MetricRow, ...]
    metrics: RunMetrics
    baseline_run_id: str | None = None
    baseline_note: str | None = None
    history: Mapping[str, tuple[tuple[str, float | None], ...]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.rows)

    def failure_message(self) -> str:
        missing = [row.metric for row in self.rows if row.value is None]
        if missing:
            return self.metrics.missing_message(missing[0])
        parts = [f"{row.metric}: {'; '.join(row.failures)}" for row in self.rows if row.failures]
        return f"run {self.run_id} did not pass the gate: " + " | ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "passed": self.passed,
            "source": self.metrics.source,
            "baseline_run_id": self.baseline_run_id,
            "baseline_note": self.baseline_note,
            "metrics": {e.qualified: e.value for e in self.metrics.entries},
            "checks": [
                {
                    "metric": row.metric,
                    "value": row.value,
                    "requirements": [asdict(r) for r in row.requirements],
                    "baseline": row.baseline,
                    "max_regression": str(row.max_regression) if row.max_regression else None,
                    "direction": "lower-is-better" if row.lower_is_better else "higher-is-better",
                    "passed": row.passed,
                    "failures": list(row.failures),
                }
                for row in self.rows
            ],
            "history": {k: [{"run_id": r, "value": v} for r, v in pts] for k, pts in self.history.items()},
        }


def _same_pipeline(run: Any, other: Any) -> bool:
    if run.pipeline_id and other.pipeline_id:
        return bool(run.pipeline_id == other.pipeline_id)
    if run.pipeline_version_id and other.pipeline_version_id:
        return bool(run.pipeline_version_id == other.pipeline_version_id)
    return not run.pipeline_id and not other.pipeline_id


def _earlier_successes(client: Any, run: Any, limit: int) -> list[Any]:
    """Newest first: SUCCEEDED runs of ``run``'s pipeline in its experiment, created before it."""
    page = client.list_runs(experiment_id=run.experiment_id or None, sort_by="created_at desc",
                            page_size=max(limit * 5, 50))
    out = []
    for other in page.runs if hasattr(page, "runs") else page:
        if other.run_id == run.run_id or other.state != "SUCCEEDED" or not _same_pipeline(run, other):
            continue
        if run.created_at and other.created_at and other.created_at > run.created_at:
            continue
        out.append(other)
        if len(out) >= limit:
            break
    return out


def evaluate_gate(
    client: Any,
    run_id: str,
    *,
    require: Iterable[str | Requirement] = (),
    baseline: str | None = None,
    max_regression: Iterable[str] | Mapping[str, float] | None = None,
    history: int = 0,
) -> GateResult:
    """Check ``run_id``'s metrics. ``client`` is a :class:`kfp_ci.client.Client` (or anything with its
    ``server``, ``host``, ``get_run`` and ``list_runs``). ``history`` > 0 also collects each gated metric over
    that many newest successful runs (for the job summary chart). Raises UsageError for bad input and
    GateFailed when the run did not succeed; a failing gate is ``result.passed == False``."""
    requirements = tuple(r if isinstance(r, Requirement) else parse_requirement(r) for r in require)
    regressions = parse_regressions(max_regression)
    if regressions and not baseline:
        baseline = LAST_SUCCESS
    if not requirements and not regressions and not baseline:
        raise UsageError("nothing to check: give --require METRIC>=VALUE, --baseline or --max-regression "
                         "(or require = [...] in [tool.kfp-ci])")
    if not requirements and not regressions:
        raise UsageError("--baseline compares the metrics named by --require or --max-regression: name at least "
                         "one (e.g. --max-regression r2=0.02)")
    run = client.get_run(run_id)
    if run.state != "SUCCEEDED":
        raise GateFailed(f"run {run_id} is {run.state}, not SUCCEEDED: only a successful run can pass the gate")
    metrics = read_run_metrics(client, run_id)

    baseline_run_id: str | None = None
    baseline_note: str | None = None
    baseline_metrics: RunMetrics | None = None
    earlier: list[Any] = []
    if baseline or history:
        if baseline and baseline != LAST_SUCCESS:
            baseline_run_id = baseline
            base_run = client.get_run(baseline)
            if base_run.state != "SUCCEEDED":
                raise UsageError(f"baseline run {baseline} is {base_run.state}, not SUCCEEDED")
        if baseline == LAST_SUCCESS or history:
            earlier = _earlier_successes(client, run, max(history, 1))
        if baseline == LAST_SUCCESS:
            if earlier:
                baseline_run_id = earlier[0].run_id
            else:
                baseline_note = "no earlier successful run of this pipeline in this experiment: nothing to compare"
        if baseline_run_id:
            baseline_metrics = read_run_metrics(client, baseline_run_id)

    names = list(dict.fromkeys([r.metric for r in requirements] + list(regressions)))
    if baseline and not regressions:
        regressions = {name: Regression(name, 0.0) for name in names}
    rows = []
    for name in names:
        reqs = tuple(r for r in requirements if r.metric == name)
        lower = lower_is_better(name, reqs)
        value = metrics.find(name)
        limit = regressions.get(name)
        base = baseline_metrics.find(name) if baseline_metrics is not None else None
        failures: list[str] = []
        notes: list[str] = []
        if value is None:
            failures.append("missing")
        else:
            failures.extend(f"{_fmt(value)} is not {r}" for r in reqs if not r.holds(value))
            if limit is not None and baseline_metrics is not None:
                if base is None:
                    notes.append(f"baseline run {baseline_run_id} has no {name}")
                else:
                    worse = (value - base) if lower else (base - value)
                    allowed = limit.allowed(base)
                    if worse > allowed + 1e-12:
                        direction = "rose" if lower else "dropped"
                        failures.append(f"{direction} {_fmt(abs(worse))} from baseline {_fmt(base)} "
                                        f"(max {limit})")
        rows.append(MetricRow(name, value, reqs, base, limit if baseline_metrics is not None else None, lower,
                              tuple(failures), tuple(notes)))

    series: dict[str, tuple[tuple[str, float | None], ...]] = {}
    if history:
        previous = list(reversed(earlier[:max(history - 1, 0)]))
        cache = {baseline_run_id: baseline_metrics} if baseline_run_id and baseline_metrics else {}
        readings = []
        for other in previous:
            found = cache.get(other.run_id)
            if found is None:
                try:
                    found = read_run_metrics(client, other.run_id)
                except KfpCiError:  # the chart is best effort: a gap, not a failed gate
                    found = RunMetrics(other.run_id, metrics.source)
            readings.append((other.run_id, found))
        readings.append((run_id, metrics))
        for name in names:
            series[name] = tuple((rid, _safe_find(m, name)) for rid, m in readings)
    return GateResult(run_id, tuple(rows), metrics, baseline_run_id, baseline_note, series)


def _safe_find(metrics: RunMetrics, name: str) -> float | None:
    try:
        return metrics.find(name)
    except GateFailed:
        return None


# ------------------------------------------------------------------------------------------ rendering
def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


_HEADERS = ("metric", "value", "threshold", "baseline", "verdict")


def _cells(row: MetricRow) -> tuple[str, ...]:
    return (row.metric, _fmt(row.value), row.threshold_text, row.baseline_text, row.verdict)


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
    lines = [f"    line [{', '.join(_fmt(v) for v in values)}]"]
    bounds = list(values)
    for req in requirements:
        lines.append(f"    line [{', '.join(_fmt(req.threshold) for _ in known)}]")
        bounds.append(req.threshold)
    low, high = min(bounds), max(bounds)
    pad = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
    title = json.dumps(f"{metric} over the last {len(known)} run{'s' if len(known) != 1 else ''}")
    return "\n".join([
        "```mermaid",
        "xychart-beta",
        f"    title {title}",
        f"    x-axis [{labels}]",
        f"    y-axis {json.dumps(metric)} {_fmt(round(low - pad, 6))} --> {_fmt(round(high + pad, 6))}",
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


# ------------------------------------------------------------------------------------------------ CLI
def _config_for(settings: Settings, pipeline: str | None) -> PipelineConfig | None:
    if not pipeline:
        return None
    for config in settings.pipelines:
        if config.name == pipeline or (config.name is None and config.function == pipeline):
            return config
    return None


HISTORY_RUNS = 8


def gate_command(
    app: Any,
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
    from kfp_ci import github

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
        from kfp_ci.deploy import make_client

        client = make_client(settings)
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
