"""The gate's rules: requirements, regressions against a baseline, and their evaluation on a run's metrics.

A gate reads the scalar metrics a finished run logged (KFP v1: ``run.metrics``; KFP v2: ``Metrics.log_metric``
through ML Metadata, see :mod:`kfp_ci.gate._mlmd`) and checks them against

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

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from kfp_ci.errors import GateFailed, KfpCiError, UsageError
from kfp_ci.gate._metrics import RunMetrics, v1_run_metrics
from kfp_ci.gate._mlmd import MlmdClient, mlmd_base_url, mlmd_run_metrics

__all__ = [
    "GateResult",
    "MetricRow",
    "Regression",
    "Requirement",
    "evaluate_gate",
    "fmt_value",
    "lower_is_better",
    "parse_regressions",
    "parse_requirement",
    "read_run_metrics",
]

_OPS = (">=", "<=", "==", ">", "<")
_LOWER_WORDS = frozenset({"loss", "error", "err", "mse", "rmse", "mae", "mape", "msle", "latency", "cost"})
_REQUIREMENT = re.compile(r"^\s*([A-Za-z_][\w./-]*)\s*(>=|<=|==|>|<)\s*(\S+)\s*$")
LAST_SUCCESS = "last-success"


# ------------------------------------------------------------------------------------------- parsing
@dataclass(frozen=True, slots=True)
class Requirement:
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
        return f"{self.op} {fmt_value(self.threshold)}"


@dataclass(frozen=True, slots=True)
class Regression:
    """The largest allowed change for the worse: ``delta`` absolute, or ``percent`` of the baseline."""

    metric: str
    delta: float
    percent: bool = False

    def allowed(self, baseline: float) -> float:
        return abs(baseline) * self.delta / 100.0 if self.percent else self.delta

    def __str__(self) -> str:
        return f"{fmt_value(self.delta)}%" if self.percent else fmt_value(self.delta)


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
@dataclass(frozen=True, slots=True)
class MetricRow:
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
        text = fmt_value(self.baseline)
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


@dataclass(frozen=True, slots=True)
class GateResult:
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
            failures.extend(f"{fmt_value(value)} is not {r}" for r in reqs if not r.holds(value))
            if limit is not None and baseline_metrics is not None:
                if base is None:
                    notes.append(f"baseline run {baseline_run_id} has no {name}")
                else:
                    worse = (value - base) if lower else (base - value)
                    allowed = limit.allowed(base)
                    if worse > allowed + 1e-12:
                        direction = "rose" if lower else "dropped"
                        failures.append(f"{direction} {fmt_value(abs(worse))} from baseline {fmt_value(base)} "
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


def fmt_value(value: float | None) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def read_run_metrics(client: Any, run_id: str) -> RunMetrics:
    """A run's metrics from wherever its KFP generation keeps them."""
    server = client.server
    if server.api == "v1beta1":
        body = client.get_run_raw(run_id)
        return v1_run_metrics(run_id, body)
    mlmd = MlmdClient(client.http, mlmd_base_url(client.host))
    return mlmd_run_metrics(mlmd, run_id)
