"""A run's scalar metrics (:class:`RunMetrics`), and reading them from a KFP v1 run.

* KFP v1 (v1beta1 API): ``run.metrics`` of ``GET /apis/v1beta1/runs/{id}`` — the ``mlpipeline-metrics`` a
  component reported (``:reportMetrics``), each ``{name, node_id, number_value, format}``.
* KFP v2 (v2beta1 API): the REST API has no metrics; :mod:`kfp_ci.gate._mlmd` reads them from ML Metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kfp_ci.errors import GateFailed

__all__ = ["MetricValue", "RunMetrics", "v1_run_metrics"]


@dataclass(frozen=True, slots=True)
class MetricValue:
    name: str
    value: float
    task: str = ""
    artifact: str = ""

    @property
    def qualified(self) -> str:
        return f"{self.task}.{self.name}" if self.task else self.name


@dataclass(frozen=True, slots=True)
class RunMetrics:
    """Every scalar metric of one run. ``lookup`` accepts a bare name or ``task.name``."""

    run_id: str
    source: str
    entries: tuple[MetricValue, ...] = field(default=())

    def names(self) -> list[str]:
        bare = sorted({e.name for e in self.entries})
        out = []
        for name in bare:
            matches = [e for e in self.entries if e.name == name]
            if len({e.value for e in matches}) > 1:
                out.extend(sorted(e.qualified for e in matches))
            else:
                out.append(name)
        return out

    def find(self, name: str) -> float | None:
        matches = [e for e in self.entries if e.name == name or e.qualified == name]
        if not matches:
            return None
        values = {e.value for e in matches}
        if len(values) > 1:
            choices = ", ".join(sorted(e.qualified for e in matches))
            raise GateFailed(f"run {self.run_id} logs metric {name!r} in several tasks with different values; "
                             f"name one of: {choices}")
        return matches[0].value

    def lookup(self, name: str) -> float:
        value = self.find(name)
        if value is None:
            raise GateFailed(self.missing_message(name))
        return value

    def missing_message(self, name: str) -> str:
        have = ", ".join(self.names()) or "none"
        return f"run {self.run_id} has no metric {name!r} (its metrics: {have})"


# ------------------------------------------------------------------------------------------- KFP v1
def v1_run_metrics(run_id: str, body: Mapping[str, Any]) -> RunMetrics:
    """Metrics from a v1beta1 ``apiRunDetail`` (or ``apiRun``) body."""
    run = body.get("run") if isinstance(body.get("run"), Mapping) else body
    entries = []
    for raw in (run or {}).get("metrics") or []:
        if not isinstance(raw, Mapping) or "name" not in raw:
            continue
        value = raw.get("number_value", raw.get("numberValue"))
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        entries.append(MetricValue(str(raw["name"]), number, str(raw.get("node_id") or raw.get("nodeId") or "")))
    return RunMetrics(run_id, "v1beta1 run.metrics", tuple(entries))


# ---------------------------------------------------------------------------------- MLMD messages
