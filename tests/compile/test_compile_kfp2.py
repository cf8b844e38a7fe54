"""Real pipelines compiled with kfp 2.x: bytes equal to ``kfp dsl compile`` with the same kfp."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from compile_helpers import as_json, by_function, copy_tree, kfp_ci, kfp_dsl_compile

PIPELINES = {  # function -> (file, pipeline name)
    "all_params": ("params.py", "all-params"),
    "artifacts": ("params.py", "artifacts"),
    "control_flow": ("control.py", "control-flow"),
    "inner": ("nested.py", "inner"),
    "outer": ("nested.py", "outer"),
}
OPTIONS = ["--pipeline-parameters", '{"i": 9, "s": "override"}', "--disable-execution-caching-by-default"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("kfp2")
    src = copy_tree("pipelines", root)
    plain = kfp_ci(["compile", "pipelines", "--out-dir", "out", "--format", "json"], root)
    opts = kfp_ci(["compile", "pipelines/params.py", "--function", "all_params", "--out-dir", "out-opts",
                   "--format", "json", *OPTIONS], root)
    (root / "ref").mkdir()
    jobs = [(src / file, fn, root / "ref" / f"{fn}.yaml", ()) for fn, (file, _) in PIPELINES.items()]
    jobs.append((src / "params.py", "all_params", root / "ref" / "all_params-opts.yaml", OPTIONS))
    kfp_dsl_compile(jobs, root)
    return {"root": root, "plain": plain, "opts": opts}


def test_every_pipeline_in_every_file_compiles(compiled: dict[str, Any]) -> None:
    result = compiled["plain"]
    assert result.exit_code == 0, result.output
    report = as_json(result)
    assert report["ok"] is True
    assert report["sdk_version"].startswith("2.")
    results = by_function(report)
    assert set(results) == set(PIPELINES)  # params.py and nested.py hold two pipelines each
    for fn, (_, name) in PIPELINES.items():
        assert results[fn]["pipeline_name"] == name
        assert results[fn]["output"] == f"out/{name}.yaml"
        assert results[fn]["sdk_version"] == report["sdk_version"]


@pytest.mark.parametrize("function", sorted(PIPELINES))
def test_bytes_equal_kfp_dsl_compile(compiled: dict[str, Any], function: str) -> None:
    root = compiled["root"]
    ours = (root / "out" / f"{PIPELINES[function][1]}.yaml").read_bytes()
    assert ours == (root / "ref" / f"{function}.yaml").read_bytes()


def test_pipeline_parameters_and_caching_flag_match_kfp(compiled: dict[str, Any]) -> None:
    result = compiled["opts"]
    assert result.exit_code == 0, result.output
    root = compiled["root"]
    ours = (root / "out-opts" / "all-params.yaml").read_bytes()
    assert ours == (root / "ref" / "all_params-opts.yaml").read_bytes()
    spec = yaml.safe_load(ours)
    assert spec["root"]["inputDefinitions"]["parameters"]["i"]["defaultValue"] == 9
    tasks = spec["root"]["dag"]["tasks"]
    assert all(task["cachingOptions"] == {} for task in tasks.values())  # caching off by default
    assert ours != (root / "out" / "all-params.yaml").read_bytes()


def test_control_flow_and_yaml_component_are_in_the_ir(compiled: dict[str, Any]) -> None:
    root = compiled["root"]
    control = yaml.safe_load((root / "out" / "control-flow.yaml").read_text())
    text = (root / "out" / "control-flow.yaml").read_text()
    assert "exit-handler-1" in control["root"]["dag"]["tasks"]
    assert "for-loop-" in text and "condition-" in text
    outer = (root / "out" / "outer.yaml").read_text()
    assert "comp-shout" in outer and "comp-inner" in outer


def test_text_report_names_each_pipeline_and_the_sdk(tmp_path: Path, compiled: dict[str, Any]) -> None:
    src = compiled["root"] / "pipelines"
    result = kfp_ci(["compile", str(src / "control.py"), "--out-dir", str(tmp_path)], compiled["root"])
    assert result.exit_code == 0, result.output
    sdk = as_json(compiled["plain"])["sdk_version"]
    assert "ok      control-flow" in result.stdout and f"kfp {sdk}" in result.stdout
    reference = compiled["root"] / "ref" / "control_flow.yaml"
    assert (tmp_path / "control-flow.yaml").read_bytes() == reference.read_bytes()


def test_spawn_fallback_writes_the_same_bytes(tmp_path: Path, compiled: dict[str, Any]) -> None:
    """Where fork is unavailable each module gets a fresh interpreter: same outputs, same isolation."""
    src = compiled["root"] / "pipelines"
    result = kfp_ci(["compile", str(src / "nested.py"), "--out-dir", str(tmp_path), "--no-cache"], tmp_path,
                    env={"KFP_CI_COMPILE_START": "spawn"})
    assert result.exit_code == 0, result.output
    for fn in ("inner", "outer"):
        ours = (tmp_path / f"{PIPELINES[fn][1]}.yaml").read_bytes()
        assert ours == (compiled["root"] / "ref" / f"{fn}.yaml").read_bytes()
