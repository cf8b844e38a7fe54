"""Errors located in the user's code with migration hints; crashing, exiting and hanging modules."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from compile_helpers import HERE, as_json, by_function, copy_tree, kfp_ci


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("broken")
    src = copy_tree("broken", root)
    shutil.copy(HERE / "pipelines" / "control.py", src / "control.py")  # a good module among the bad ones
    result = kfp_ci(["compile", "broken", "--out-dir", "out", "--format", "json", "--timeout", "4", "-j", "2"], root)
    return {"root": root, "src": src, "result": result, "report": as_json(result)}


def test_one_bad_module_fails_only_its_own_pipelines(broken: dict[str, Any]) -> None:
    assert broken["result"].exit_code == 1
    results = by_function(broken["report"])
    assert results["control_flow"]["ok"] is True
    assert (broken["root"] / "out" / "control-flow.yaml").is_file()
    failed = {fn for fn, r in results.items() if not r["ok"]}
    assert failed == {"untyped", "positional", "containerop", "crash", "hang", "exits", "v1_style"}


def test_untyped_parameter_is_located_and_hinted(broken: dict[str, Any]) -> None:
    error = by_function(broken["report"])["untyped"]["error"]
    assert error["file"] == "broken/untyped.py"
    assert error["line"] == _line_of(broken["src"] / "untyped.py", "@dsl.pipeline")
    assert "Missing type annotation for argument: x" in error["message"]
    assert "type annotation" in error["hint"]


def test_positional_call_points_at_the_call_in_a_helper(broken: dict[str, Any]) -> None:
    error = by_function(broken["report"])["positional"]["error"]
    assert error["line"] == _line_of(broken["src"] / "positional.py", "add(x, 1)")
    assert "keyword arguments" in error["hint"]


def test_containerop_is_hinted(broken: dict[str, Any]) -> None:
    error = by_function(broken["report"])["containerop"]["error"]
    assert error["line"] == _line_of(broken["src"] / "containerop.py", "dsl.ContainerOp(")
    assert "ContainerOp" in error["message"] and "container_component" in error["hint"]


def test_v1_source_fails_under_kfp2_at_its_v1_import(broken: dict[str, Any]) -> None:
    error = by_function(broken["report"])["v1_style"]["error"]
    assert error["file"] == "broken/v1_style.py"
    assert error["line"] == _line_of(broken["src"] / "v1_style.py", "import create_component_from_func")
    assert "create_component_from_func" in error["message"]
    assert "@dsl.component" in error["hint"]


def test_crash_exit_and_hang_have_clear_messages(broken: dict[str, Any]) -> None:
    results = by_function(broken["report"])
    assert "exited with code 3" in results["crash"]["error"]["message"]
    assert "sys.exit(4)" in results["exits"]["error"]["message"]
    assert "timed out after 4 s" in results["hang"]["error"]["message"]
    assert results["hang"]["error"]["file"] == "broken/hang.py"


def test_github_format_groups_and_annotates(tmp_path: Path) -> None:
    src = copy_tree("broken", tmp_path)
    result = kfp_ci(["compile", "broken/untyped.py", "broken/positional.py", "--format", "github"], tmp_path)
    assert result.exit_code == 1
    out = result.stdout
    assert "::group::untyped (failed)" in out and "::endgroup::" in out
    line = _line_of(src / "untyped.py", "@dsl.pipeline")
    assert (f"::error file=broken/untyped.py,line={line},title=kfp-ci compile%3A untyped::"
            "TypeError: Missing type annotation for argument: x Hint: kfp 2 needs a type annotation") in out


def test_text_format_under_github_actions_defaults_to_github(tmp_path: Path) -> None:
    copy_tree("broken", tmp_path)
    result = kfp_ci(["compile", "broken/containerop.py"], tmp_path, env={"GITHUB_ACTIONS": "true"})
    assert result.exit_code == 1
    assert "::error file=broken/containerop.py,line=6," in result.stdout


def test_text_format_prints_location_and_hint(tmp_path: Path) -> None:
    copy_tree("broken", tmp_path)
    result = kfp_ci(["compile", "broken/containerop.py"], tmp_path)
    assert result.exit_code == 1
    assert "FAILED  containerop  broken/containerop.py:6: AttributeError" in result.stdout
    assert "hint: dsl.ContainerOp was removed in kfp 2" in result.stdout
    assert "1 failed" in result.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_text("x = 1\n")
    result = kfp_ci(["compile", "empty.py"], tmp_path)
    assert result.exit_code == 2
    assert "no @dsl.pipeline function found in empty.py" in result.stderr
    copy_tree("pipelines", tmp_path)
    result = kfp_ci(["compile", "pipelines", "--pipeline-parameters", "{not json"], tmp_path)
    assert result.exit_code == 2 and "--pipeline-parameters is not valid JSON" in result.stderr
    result = kfp_ci(["compile", "pipelines", "--function", "nope"], tmp_path)
    assert result.exit_code == 2 and "no pipeline function named 'nope'" in result.stderr
