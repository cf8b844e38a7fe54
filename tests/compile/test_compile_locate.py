"""Errors point at the right place: paths from the repository root, the helper that raised, the syntax error's
pipelines; hints that fit; and a module that times out leaves nothing running."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from compile_helpers import as_json, by_function, kfp_ci

COMPONENTS = '''from kfp import dsl


@dsl.component(base_image="python:3.11")
def untyped(x) -> int:
    return 1
'''
TRAIN = '''from components import untyped
from kfp import dsl


@dsl.pipeline(name="train")
def train() -> None:
    untyped(x=1)
'''
EVAL = '''from components import untyped
from kfp import dsl


@dsl.pipeline(name="evaluate")
def evaluate() -> None:
    untyped(x=2)
'''


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    pipelines = tmp_path / "repo" / "ml" / "pipelines"
    pipelines.mkdir(parents=True)
    (pipelines / "components.py").write_text(COMPONENTS)
    (pipelines / "train.py").write_text(TRAIN)
    (pipelines / "evaluate.py").write_text(EVAL)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path / "repo", check=True)
    return tmp_path / "repo"


def test_annotations_are_relative_to_the_git_top_level_not_the_working_directory(repo: Path) -> None:
    result = kfp_ci(["compile", "pipelines/train.py", "--format", "github"], repo / "ml")
    assert result.exit_code == 1
    # the error is in the helper the pipeline imports, not at the `import` line of train.py (item 9)
    assert "::error file=ml/pipelines/components.py,line=4,title=kfp-ci compile%3A train::TypeError: Missing " \
           "type annotation for argument: x" in result.stdout
    assert "FAILED  train  pipelines/components.py:4:" in result.stdout  # the terminal's text: from the cwd


def test_json_paths_are_relative_to_github_workspace_on_a_runner(repo: Path, tmp_path: Path) -> None:
    (repo / "ml" / "pipelines" / "components.py").write_text(COMPONENTS.replace("(x)", "(x: int)"))
    (repo / "ml" / "pipelines" / "evaluate.py").unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = str(repo / "ml" / "pipelines")
    result = kfp_ci(["compile", target, "--out-dir", str(repo / "ml" / "out"), "--format", "json"], elsewhere,
                    env={"GITHUB_WORKSPACE": str(repo)})
    assert result.exit_code == 0, result.output
    report = as_json(result)
    assert report["root"] == str(repo.resolve())
    (entry,) = report["results"]
    assert entry["source"] == "ml/pipelines/train.py" and entry["output"] == "ml/out/train.yaml"


def test_an_error_in_an_imported_helper_is_located_there_for_every_importer(repo: Path) -> None:
    result = kfp_ci(["compile", "ml/pipelines", "--format", "json"], repo)
    assert result.exit_code == 1
    results = by_function(as_json(result))
    for function in ("train", "evaluate"):
        error = results[function]["error"]
        assert (error["file"], error["line"]) == ("ml/pipelines/components.py", 4)
        assert "type annotation" in error["hint"]


def test_a_syntax_error_names_its_pipelines_and_counts_them_failed(tmp_path: Path) -> None:
    (tmp_path / "syn.py").write_text("from kfp import dsl\n\n\n@dsl.pipeline(name='one')\ndef one() -> None:\n"
                                     "    pass\n\n\n@dsl.pipeline\ndef two(x: int = 1) -> None:\n    x = (\n")
    result = kfp_ci(["compile", "syn.py", "--format", "json"], tmp_path)
    assert result.exit_code == 1
    results = by_function(as_json(result))
    assert set(results) == {"one", "two"}
    for entry in results.values():
        assert entry["error"]["file"] == "syn.py" and entry["error"]["line"] == 11
        assert "SyntaxError" in entry["error"]["message"]
    text = kfp_ci(["compile", "syn.py"], tmp_path)
    assert "FAILED  one  syn.py:11: SyntaxError" in text.stdout
    assert "2 pipeline(s): 0 compiled, 0 from cache, 2 failed" in text.stderr


HINTED = {
    "kube": ("from kfp import kubernetes\n", "pass", "pip install kfp-kubernetes"),
    "nodesel": ("", "echo().add_node_selector_constraint('disktype', 'ssd')",
                "kubernetes.add_node_selector(task"),
    "volumeop": ("", "dsl.VolumeOp(name='v', resource_name='pvc', size='1Gi')", "kubernetes.CreatePVC"),
    "runid": ("", "echo().set_env_variable('RUN', dsl.RUN_ID_PLACEHOLDER)", "dsl.PIPELINE_JOB_ID_PLACEHOLDER"),
    "execid": ("", "echo().set_env_variable('EXE', dsl.EXECUTION_ID_PLACEHOLDER)",
               "dsl.PIPELINE_TASK_ID_PLACEHOLDER"),
}


def test_hints_fit_the_error(tmp_path: Path) -> None:
    for name, (extra_import, body, _) in HINTED.items():
        (tmp_path / f"{name}.py").write_text(
            f"from kfp import dsl\n{extra_import}\n\n@dsl.container_component\ndef echo() -> dsl.ContainerSpec:\n"
            f"    return dsl.ContainerSpec(image='alpine', command=['true'])\n\n\n@dsl.pipeline(name='{name}')\n"
            f"def {name}() -> None:\n    {body}\n")
    result = kfp_ci(["compile", ".", "--format", "json"], tmp_path)
    results = by_function(as_json(result))
    for name, (_, _, hint) in HINTED.items():
        error = results[name]["error"]
        assert error is not None and hint in (error["hint"] or ""), (name, error)
    assert "keyword arguments" not in results["nodesel"]["error"]["hint"]
    assert "a kfp 1.x" not in results["kube"]["error"]["hint"]


HANGS = '''import subprocess
import time

from kfp import dsl

child = subprocess.Popen(["sleep", "300"])
with open("grandchild.pid", "w") as fh:
    fh.write(str(child.pid))
time.sleep(300)


@dsl.pipeline(name="spawner")
def spawner() -> None:
    pass
'''


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_a_module_that_times_out_is_killed_with_what_it_started(tmp_path: Path) -> None:
    (tmp_path / "spawner.py").write_text(HANGS)
    result = kfp_ci(["compile", "spawner.py", "--timeout", "3", "--format", "json"], tmp_path)
    (entry,) = as_json(result)["results"]
    assert "timed out after 3 s" in entry["error"]["message"]
    pid = int((tmp_path / "grandchild.pid").read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), f"the module's child {pid} outlived the timeout"


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_interrupting_kfp_ci_leaves_nothing_running(tmp_path: Path) -> None:
    import signal
    import sys

    (tmp_path / "spawner.py").write_text(HANGS)
    env = {**os.environ, "GITHUB_ACTIONS": "", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "kfp_ci", "compile", "spawner.py", "--timeout", "120"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pid_file = tmp_path / "grandchild.pid"
    deadline = time.monotonic() + 60
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pid_file.exists(), "the module never started"
    time.sleep(0.2)
    pid = int(pid_file.read_text())
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), f"the module's child {pid} outlived kfp-ci"
