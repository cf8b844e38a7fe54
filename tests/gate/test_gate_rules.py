"""The gate's rules on KFP v1 run metrics (v1beta1 ``run.metrics``), through the real kfp-ci Client."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from kfp_ci.cli import main
from kfp_ci.errors import GateFailed, UsageError
from kfp_ci.gate import (
    evaluate_gate,
    lower_is_better,
    mermaid_chart,
    parse_regressions,
    parse_requirement,
    render_markdown,
    render_table,
)

from .fake_v1 import FakeV1, V1Run


def history() -> FakeV1:
    return FakeV1([
        V1Run("r0", "2026-01-01T00:00:00Z", {"r2": 0.95, "mse": 50.0}),
        V1Run("other-pipeline", "2026-01-02T00:00:00Z", {"r2": 0.10, "mse": 900.0}, pipeline_id="p-other"),
        V1Run("failed", "2026-01-03T00:00:00Z", {"r2": 0.20, "mse": 800.0}, status="Failed"),
        V1Run("other-exp", "2026-01-03T12:00:00Z", {"r2": 0.99, "mse": 1.0}, experiment_id="exp-2"),
        V1Run("r1", "2026-01-04T00:00:00Z", {"r2": 0.90, "mse": 61.0}),
        V1Run("later", "2026-01-05T00:00:00Z", {"r2": 0.5, "mse": 400.0}),
    ])


def test_loose_threshold_passes_and_strict_fails() -> None:
    with history().client() as client:
        loose = evaluate_gate(client, "r1", require=["r2>=0.8", "mse<=120"])
        strict = evaluate_gate(client, "r1", require=["r2>=0.99", "mse<=120"])
    assert loose.passed and loose.metrics.source == "v1beta1 run.metrics"
    assert [(r.metric, r.value, r.verdict) for r in loose.rows] == [("r2", 0.9, "pass"), ("mse", 61.0, "pass")]
    assert not strict.passed
    assert strict.rows[0].failures == ("0.9 is not >= 0.99",) and strict.rows[1].passed
    assert strict.failure_message() == "run r1 did not pass the gate: r2: 0.9 is not >= 0.99"
    table = render_table(strict)
    assert table.splitlines()[1].split() == ["metric", "value", "threshold", "baseline", "verdict"]
    assert "r2      0.9    >= 0.99    -         FAIL: 0.9 is not >= 0.99" in table and table.endswith("FAILED")


def test_regression_against_the_last_success_of_the_same_pipeline_and_experiment() -> None:
    fake = history()
    with fake.client() as client:
        result = evaluate_gate(client, "r1", require=["r2>=0.8"], max_regression=["r2=0.02", "mse=5"])
        relaxed = evaluate_gate(client, "r1", max_regression={"r2": 0.1, "mse": 20.0})
    # r0 is the baseline: not the failed run, the other pipeline, the other experiment or the later run.
    assert result.baseline_run_id == "r0" and relaxed.baseline_run_id == "r0"
    rows = {r.metric: r for r in result.rows}
    assert rows["r2"].failures == ("dropped 0.05 from baseline 0.95 (max 0.02)",)
    assert rows["mse"].lower_is_better and rows["mse"].failures == ("rose 11 from baseline 50 (max 5)",)
    assert rows["r2"].baseline_text == "0.95 (-0.02 allowed)" and rows["mse"].baseline_text == "50 (+5 allowed)"
    assert relaxed.passed


def test_explicit_baseline_without_delta_allows_no_regression() -> None:
    fake = history()
    fake.runs.append(V1Run("r2", "2026-01-06T00:00:00Z", {"r2": 0.90, "mse": 61.0}))
    with fake.client() as client:
        same = evaluate_gate(client, "r2", require=["r2>=0.5"], baseline="r1")
        worse = evaluate_gate(client, "r1", require=["r2>=0.5"], baseline="r0")
        percent = evaluate_gate(client, "r1", baseline="r0", max_regression=["r2=10%"])
    assert same.passed and same.baseline_run_id == "r1"
    assert worse.rows[0].failures == ("dropped 0.05 from baseline 0.95 (max 0)",)
    assert percent.passed  # 0.05 < 10 % of 0.95


def test_first_run_has_no_baseline_but_thresholds_still_apply() -> None:
    fake = FakeV1([V1Run("only", "2026-01-01T00:00:00Z", {"r2": 0.7})])
    with fake.client() as client:
        result = evaluate_gate(client, "only", require=["r2>=0.8"], baseline="last-success",
                               max_regression=["r2=0.02"])
    assert result.baseline_run_id is None and "no earlier successful run" in (result.baseline_note or "")
    assert result.rows[0].failures == ("0.7 is not >= 0.8",)


def test_missing_metric_names_the_metrics_the_run_has() -> None:
    with history().client() as client:
        result = evaluate_gate(client, "r1", require=["accuracy>=0.9", "r2>=0.1"])
    assert not result.passed and result.rows[0].verdict == "FAIL: missing"
    assert result.failure_message() == "run r1 has no metric 'accuracy' (its metrics: mse, r2)"


def test_a_baseline_needs_metrics_to_compare() -> None:
    fake = history()
    with fake.client() as client, pytest.raises(UsageError, match="--baseline compares the metrics named by"):
        evaluate_gate(client, "r1", baseline="r0")
    assert fake.requests == []


def test_qualified_names_and_failed_runs() -> None:
    with history().client() as client:
        assert evaluate_gate(client, "r1", require=["train-abc.r2>=0.85"]).passed
        with pytest.raises(GateFailed, match="run failed is FAILED, not SUCCEEDED"):
            evaluate_gate(client, "failed", require=["r2>=0.1"])


def test_history_chart_covers_the_last_successful_runs() -> None:
    with history().client() as client:
        result = evaluate_gate(client, "r1", require=["r2>=0.8"], baseline="last-success", history=8)
    assert result.history["r2"] == (("r0", 0.95), ("r1", 0.9))
    markdown = render_markdown(result)
    assert "| metric | value | threshold | baseline | verdict |" in markdown
    row = "| r2 | 0.9 | >= 0.8 | 0.95 (no regression allowed) | ❌ FAIL: dropped 0.05 from baseline 0.95 (max 0) |"
    assert row in markdown
    chart = mermaid_chart("r2", result.history["r2"], [parse_requirement("r2>=0.8")])
    assert chart in markdown
    assert chart.splitlines() == [
        "```mermaid", "xychart-beta", '    title "r2 over the last 2 runs"', '    x-axis ["r0", "r1"]',
        '    y-axis "r2" 0.785 --> 0.965', "    line [0.95, 0.9]", "    line [0.8, 0.8]", "```"]


def test_requirement_and_regression_parsing() -> None:
    assert parse_requirement(" r2 >= 0.8 ").threshold == 0.8
    assert [parse_requirement(t).op for t in ("a>=1", "a<=1", "a>1", "a<1", "a==1")] == [">=", "<=", ">", "<", "=="]
    assert parse_requirement("acc==0.5").holds(0.5) and not parse_requirement("mse<1").holds(1.0)
    for bad in ("r2=>0.8", "r2>=high", "r2", ">=0.8", "r2>=nan"):
        with pytest.raises(UsageError):
            parse_requirement(bad)
    assert parse_regressions(["r2=0.02", "mse = 5%"])["mse"].allowed(200.0) == 10.0
    for bad in (["r2"], ["r2=-1"], ["r2=x"]):
        with pytest.raises(UsageError):
            parse_regressions(bad)


def test_infinite_values_are_shown_and_fail_thresholds() -> None:
    # proto3 JSON writes a double infinity as the string "Infinity"
    fake = FakeV1([V1Run("inf", "2026-01-01T00:00:00Z", {"mse": "Infinity"})])  # type: ignore[dict-item]
    with fake.client() as client:
        result = evaluate_gate(client, "inf", require=["mse<=120"])
    assert result.rows[0].failures == ("inf is not <= 120",)


def test_direction_rule() -> None:
    for lower in ("mse", "rmse", "val_loss", "test-mae", "eval.error", "p95_latency", "logloss_err"):
        assert lower_is_better(lower), lower
    for higher in ("r2", "accuracy", "auc", "f1", "precision", "losslessness"):
        assert not lower_is_better(higher), higher
    assert lower_is_better("score", [parse_requirement("score<=3")])
    assert not lower_is_better("loss", [parse_requirement("loss>=0.1")])


def test_cli_rejects_bad_input_before_any_request(tmp_path: object) -> None:
    runner = CliRunner()
    args = ["gate", "run-1", "--host", "http://127.0.0.1:9", "--auth", "none"]
    bad = runner.invoke(main, [*args, "--require", "r2=>0.8"], env={"KFP_CI_CONFIG": ""})
    assert bad.exit_code == 2 and "bad requirement 'r2=>0.8'" in bad.output and "Traceback" not in bad.output
    nothing = runner.invoke(main, args, env={"KFP_CI_CONFIG": ""})
    assert nothing.exit_code == 2 and "nothing to check" in nothing.output
