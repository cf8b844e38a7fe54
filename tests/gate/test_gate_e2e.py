"""End to end against the embedded server: the building-energy example executed for real, then gated.

Run 1 (the baseline) comes from ``kfp-ci deploy --run --wait --require ...`` (the CI job's command); run 2
is the same pipeline with much more measurement noise (a worse model) started through the client. Then
``kfp-ci gate`` passes run 1 with a loose threshold, fails it with a strict one and fails run 2 for its
regression against run 1, with the table on stdout and the job summary (table + Mermaid chart) written.
KFP 1.8: metrics reported with ``:reportMetrics`` come back in ``run.metrics`` and are gated the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from kfp_ci.cli import main

pytest.importorskip("kfp")

ENERGY = Path(__file__).resolve().parents[2] / "examples" / "building_energy" / "pipeline.py"


def kfp_ci(*args: str, env: dict[str, str] | None = None) -> Any:
    base = {"KFP_CI_CONFIG": "", "GITHUB_ACTIONS": "", "GITHUB_STEP_SUMMARY": "", "KFP_CI_MLMD_URL": ""}
    return CliRunner().invoke(main, list(args), env={**base, **(env or {})}, catch_exceptions=False)


def compile_energy(tmp_path: Path) -> Path:
    import importlib.util

    from kfp import compiler

    spec = importlib.util.spec_from_file_location("gate_energy_example", ENERGY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "building-energy.yaml"
    compiler.Compiler().compile(module.building_energy_pipeline, str(out))
    return out


@pytest.mark.slow
def test_gate_building_energy_on_the_embedded_server(kfp_server: Callable[..., Any], tmp_path: Path) -> None:
    from kfp_ci.client import Client

    server = kfp_server(execute=True)
    url = server.url
    package = compile_energy(tmp_path)
    conn = ["--host", url, "--auth", "none"]

    # The CI job's command, in its own process; the noisy run starts as soon as the good one exists, so the
    # two pipelines execute side by side.
    deploy = subprocess.Popen(
        [sys.executable, "-m", "kfp_ci", "deploy", str(package), *conn, "-e", "ct", "--version-name", "v1",
         "--run", "--wait", "--timeout", "300", "--param", "n_rows=100", "--param", "noise=4.0",
         "--require", "r2>=0.8", "--require", "mse<=120"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "KFP_CI_CONFIG": "", "GITHUB_ACTIONS": "", "GITHUB_STEP_SUMMARY": ""})
    try:
        with Client(url) as client:
            deadline = time.monotonic() + 120
            good = None
            while good is None and time.monotonic() < deadline and deploy.poll() is None:
                experiments = [e for e in client.list_experiments().experiments if e.display_name == "ct"]
                runs = client.list_runs(experiment_id=experiments[0].experiment_id).runs if experiments else ()
                good = runs[0] if runs else None
                time.sleep(0.2)
            assert good is not None, deploy.communicate()[0]
            noisy = client.run_pipeline(good.experiment_id, "noisy", params={"n_rows": 100, "noise": 30.0},
                                        pipeline_id=good.pipeline_id, version_id=good.pipeline_version_id)
            done = client.wait_for_run_completion(noisy.run_id, timeout=300, sleep_duration=0.5)
            assert done.state == "SUCCEEDED", done.error
        output, _ = deploy.communicate(timeout=300)
    finally:
        if deploy.poll() is None:
            deploy.kill()
    assert deploy.returncode == 0, output
    assert f"gate for run {good.run_id}" in output and "PASSED" in output

    loose = kfp_ci("gate", good.run_id, *conn, "--require", "r2>=0.8", "--require", "mse<=120")
    assert loose.exit_code == 0, loose.output
    lines = loose.output.splitlines()
    assert lines[0] == f"gate for run {good.run_id} (metrics from ML Metadata (gRPC-web))"
    assert lines[1].split() == ["metric", "value", "threshold", "baseline", "verdict"]
    r2_text = next(line for line in lines if line.startswith("r2 ")).split()[1]
    r2 = float(r2_text)
    assert 0.8 <= r2 <= 1.0

    strict = kfp_ci("gate", good.run_id, *conn, "--require", "r2>=0.999")
    assert strict.exit_code == 1
    assert f"FAIL: {r2_text} is not >= 0.999" in strict.output
    assert f"error: run {good.run_id} did not pass the gate: r2:" in strict.output

    summary = tmp_path / "summary.md"
    regressed = kfp_ci("gate", noisy.run_id, *conn, "--require", "r2>=0.1", "--max-regression", "r2=0.02",
                       "-o", "json", env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    assert regressed.exit_code == 1, regressed.output
    report = json.loads(regressed.output[: regressed.output.rindex("}") + 1])
    assert report["baseline_run_id"] == good.run_id and report["passed"] is False
    (check,) = report["checks"]
    assert check["metric"] == "r2" and check["baseline"] == pytest.approx(r2) and check["value"] < r2 - 0.02
    assert check["failures"][0].startswith("dropped ")
    assert {"r2", "mse", "mae", "rmse"} <= {name.rsplit(".", 1)[-1] for name in report["metrics"]}
    markdown = summary.read_text()
    assert "| metric | value | threshold | baseline | verdict |" in markdown and "❌ FAIL: dropped" in markdown
    assert "xychart-beta" in markdown and f'"{good.run_id[:8]}", "{noisy.run_id[:8]}"' in markdown

    missing = kfp_ci("gate", good.run_id, *conn, "--require", "accuracy>=0.9")
    assert missing.exit_code == 1
    assert f"run {good.run_id} has no metric 'accuracy' (its metrics: " in missing.output
    assert "gradient_boosting_r2" in missing.output and "mse" in missing.output


def test_gate_v1_run_metrics_on_a_kfp_18_server(kfp_server: Callable[..., Any], tmp_path: Path) -> None:
    from kfp_ci.client import Client

    server = kfp_server(compat="1.8", execute=False, run_delay=0.0)
    package = compile_energy(tmp_path)
    with Client(server.url) as client:
        assert client.server.api == "v1beta1"
        pipeline = client.upload_pipeline(str(package), "energy")
        experiment = client.create_experiment("ct")
        runs = []
        for name, r2, mse in (("base", 0.95, 40.0), ("next", 0.90, 45.0)):
            run = client.run_pipeline(experiment.experiment_id, name, pipeline_id=pipeline.pipeline_id)
            assert client.wait_for_run_completion(run.run_id, timeout=30, sleep_duration=0.1).state == "SUCCEEDED"
            # What the v1 persistence agent does with a step's mlpipeline-metrics.
            answer = httpx.post(f"{server.url}/apis/v1beta1/runs/{run.run_id}:reportMetrics", json={
                "run_id": run.run_id, "metrics": [
                    {"name": "r2", "node_id": "train-1", "number_value": r2, "format": "RAW"},
                    {"name": "mse", "node_id": "train-1", "number_value": mse, "format": "RAW"}]})
            assert answer.status_code == 200, answer.text
            runs.append(run.run_id)
    conn = ["--host", server.url, "--auth", "none"]
    ok = kfp_ci("gate", runs[1], *conn, "--require", "r2>=0.8", "--require", "mse<=50")
    assert ok.exit_code == 0, ok.output
    assert "metrics from v1beta1 run.metrics" in ok.output
    regressed = kfp_ci("gate", runs[1], *conn, "--baseline", "last-success", "--max-regression", "r2=0.02",
                       "--max-regression", "mse=1")
    assert regressed.exit_code == 1
    assert "dropped 0.05 from baseline 0.95 (max 0.02)" in regressed.output
    assert "rose 5 from baseline 40 (max 1)" in regressed.output
