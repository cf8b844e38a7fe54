"""The example pipelines compile with the real kfp compiler and execute with kfp.local."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from .helpers import ENERGY, UNZIP, load_example, local_task_output

kfp = pytest.importorskip("kfp")
from kfp import compiler, local  # noqa: E402


def _compile(func: object, tmp_path: Path) -> dict[str, object]:
    out = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(func, str(out))
    data: dict[str, object] = yaml.safe_load(out.read_text())
    return data


def test_unzip_csv_compiles(tmp_path: Path) -> None:
    spec = _compile(load_example(UNZIP).unzip_csv_pipeline, tmp_path)
    assert spec["pipelineInfo"] == {"name": "unzip-csv", "description": spec["pipelineInfo"]["description"]}  # type: ignore[index]
    tasks = spec["root"]["dag"]["tasks"]  # type: ignore[index]
    assert set(tasks) == {"make-archive", "extract-csv", "read-csv"}
    params = spec["root"]["inputDefinitions"]["parameters"]  # type: ignore[index]
    assert params["rows"]["defaultValue"] == 50 and params["rows"]["parameterType"] == "NUMBER_INTEGER"


def test_building_energy_compiles(tmp_path: Path) -> None:
    spec = _compile(load_example(ENERGY).building_energy_pipeline, tmp_path)
    assert spec["pipelineInfo"]["name"] == "building-energy"  # type: ignore[index]
    tasks = spec["root"]["dag"]["tasks"]  # type: ignore[index]
    assert set(tasks) == {"generate-tables", "merge-tables", "clean-table", "build-features",
                          "compare-candidates", "retrain-best", "predict"}
    assert set(spec["root"]["inputDefinitions"]["parameters"]) == {"n_rows", "seed", "noise", "test_size"}  # type: ignore[index]
    outputs = spec["components"]["comp-retrain-best"]["outputDefinitions"]["artifacts"]  # type: ignore[index]
    assert outputs["metrics"]["artifactType"]["schemaTitle"] == "system.Metrics"
    # No runtime installs beyond the kfp package itself: the examples must run offline.
    for name, executor in spec["deploymentSpec"]["executors"].items():  # type: ignore[index]
        installs = [line for part in executor["container"]["command"] for line in part.splitlines()
                    if "pip install" in line]
        assert installs and all("pandas" not in line and "scikit" not in line for line in installs), name


@pytest.fixture
def local_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """kfp.local with the subprocess runner in this environment; everything it writes stays in tmp_path."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "outputs"
    local.init(local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    return root


@pytest.mark.slow
def test_unzip_csv_executes_locally(local_runner: Path) -> None:
    load_example(UNZIP).unzip_csv_pipeline(rows=12, seed=3)
    read = local_task_output(local_runner, "read-csv")
    assert read["parameterValues"] == {"rows": 12, "columns": 4}
    metrics = read["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert metrics["rows"] == 12 and metrics["columns"] == 4
    extracted = next(local_runner.glob("*/extract-csv/table"))
    with extracted.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 and set(rows[0]) == {"day", "store", "units", "price"}
    assert metrics["total_units"] == sum(int(r["units"]) for r in rows)


@pytest.mark.slow
def test_building_energy_executes_locally(local_runner: Path) -> None:
    load_example(ENERGY).building_energy_pipeline(n_rows=150, seed=1, noise=3.0)
    final = local_task_output(local_runner, "retrain-best")
    metrics = final["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert {"r2", "mse", "mae", "rmse"} <= set(metrics)
    assert 0.8 < metrics["r2"] <= 1.0
    assert 0 < metrics["mae"] < metrics["rmse"] and abs(metrics["rmse"] ** 2 - metrics["mse"]) < 1e-3
    compared = local_task_output(local_runner, "compare-candidates")
    scores = compared["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert set(scores) == {"svr_r2", "random_forest_r2", "gradient_boosting_r2"}
    best = compared["parameterValues"]["model_type"]
    assert scores[f"{best}_r2"] == max(scores.values())
    assert scores[f"{best}_r2"] == pytest.approx(metrics["r2"], abs=1e-6)  # retrained on the same split
    predictions = next(local_runner.glob("*/predict/predictions"))
    with predictions.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == local_task_output(local_runner, "predict")["parameterValues"]["Output"]
    assert {"building_id", "year", "energy_kwh_m2", "predicted_kwh_m2"} <= set(rows[0])
