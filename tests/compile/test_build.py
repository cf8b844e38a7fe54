"""Pipelines another tool builds (``build`` in [tool.kfp-ci]): compile, --check fresh and stale, cache, deploy.

``build_project/`` holds a TFX-style runner script (writes a PipelineJob JSON, as TFX's KubeflowV2DagRunner does)
and a shell build command (packs an exported pipeline into a .tar.gz, as kfp 1.8 did). Each test copies them into a
fresh git repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from compile_helpers import HERE, as_json, kfp_ci

_GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
_CLI_ENV = {"KFP_CI_CONFIG": "", "GITHUB_OUTPUT": "", "GITHUB_STEP_SUMMARY": "", "KFP_CI_TOKEN": "",
            "KFP_CI_PASSWORD": ""}
HELLO = '''from kfp import dsl


@dsl.component(base_image="python:3.11")
def say(text: str) -> str:
    return text


@dsl.pipeline(name="hello")
def hello(text: str = "hi") -> str:
    return say(text=text).output
'''


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True,
                          env={**os.environ, **_GIT_ENV}).stdout.strip()


def commit(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "--allow-empty", "-m", message)


def fresh_repo(tmp_path: Path, table: str) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(HERE / "build_project", root)
    (root / "pyproject.toml").write_text("[tool.kfp-ci]\n\n" + table)
    git(root, "init", "-q", "-b", "main")
    commit(root, "first")
    return root


def tfx_table(inputs: bool = True) -> str:
    return ("[[tool.kfp-ci.pipelines]]\n"
            f'build = "{sys.executable} tfx_pipeline.py"\n'
            'output = "build/pipeline.json"\n' + ('inputs = ["tfx_pipeline.py"]\n' if inputs else ""))


def compile_json(root: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = kfp_ci(["compile", "--format", "json", *args], root, env=_CLI_ENV)
    return result.exit_code, as_json(result)


def test_a_tfx_style_runner_in_a_fresh_repo_compile_check_and_deploy(
    tmp_path: Path, kfp_server: Callable[..., Any],
) -> None:
    root = fresh_repo(tmp_path, tfx_table())
    output = root / "build" / "pipeline.json"
    result = kfp_ci(["compile"], root, env=_CLI_ENV)
    assert result.exit_code == 0, result.output
    assert ("ok      taxi-trainer  pyproject.toml:build -> build/pipeline.json  [wrote, build command]"
            in result.stdout), result.stdout
    job = json.loads(output.read_text())
    assert job["pipelineSpec"]["pipelineInfo"]["name"] == "taxi-trainer"
    assert job["runtimeConfig"]["parameterValues"] == {"rows": 1000}
    # inputs given: the second compile is answered from the cache
    code, report = compile_json(root)
    assert code == 0 and report["results"][0]["cached"] is True and report["results"][0]["status"] == "unchanged"
    commit(root, "built pipeline")

    code, report = compile_json(root, "--check")
    (entry,) = report["results"]
    assert code == 0 and entry["status"] == "fresh", report
    committed = output.read_bytes()

    runner = root / "tfx_pipeline.py"
    runner.write_text(runner.read_text().replace("rate: float = 0.1", "rate: float = 0.2"))
    result = kfp_ci(["compile", "--check"], root, env=_CLI_ENV)
    assert result.exit_code == 1, result.output
    assert "built file" in result.stdout and "is stale: it differs from a fresh build" in result.stdout
    assert '-            "defaultValue": 0.1,\n+            "defaultValue": 0.2,' in result.stdout  # the diff
    assert output.read_bytes() == committed  # --check touches nothing
    runner.write_text(runner.read_text().replace("ROWS = 1000", "ROWS = 5"))
    code, report = compile_json(root, "--check")
    assert code == 1 and report["results"][0]["status"] == "stale"
    git(root, "checkout", "--", "tfx_pipeline.py")

    # deploy from [tool.kfp-ci] (run in a subdirectory: the build still runs where pyproject.toml is): builds,
    # unwraps the PipelineJob, runs with its parameter values
    srv = kfp_server(execute=False)
    (root / "docs").mkdir()
    result = kfp_ci(["deploy", "--host", srv.url, "--run", "-o", "json"], root / "docs", env=_CLI_ENV)
    assert result.exit_code == 0, result.output
    assert "found PipelineJob (TFX/Vertex) holding a KFP v2 pipeline spec in pipeline.json" in result.stderr
    data = json.loads(result.stdout[result.stdout.find("{"):])
    data = data[0] if isinstance(data, list) else data
    assert data["pipeline"] == "taxi-trainer" and data["version_action"] == "uploaded"
    import kfp

    client = kfp.Client(host=srv.url)
    assert client.get_run(data["run_id"]).runtime_config.parameters == {"rows": 1000}
    version = client.get_pipeline_version(data["pipeline_id"], data["version_id"])
    assert version.pipeline_spec == job["pipelineSpec"]


def test_a_shell_build_beside_a_kfp_pipeline(tmp_path: Path) -> None:
    table = ('[[tool.kfp-ci.pipelines]]\nsource = "pipes/hello.py:hello"\noutput = "compiled/hello.yaml"\n\n'
             '[[tool.kfp-ci.pipelines]]\nname = "exported"\nbuild = "sh make_pipeline.sh"\n'
             'output = "dist/pipeline.tar.gz"\ninputs = ["make_pipeline.sh", "exported/*.yaml"]\n')
    root = fresh_repo(tmp_path, table)
    (root / "pipes").mkdir()
    (root / "pipes" / "hello.py").write_text(HELLO)
    assert kfp_ci(["compile", "pipes/hello.py", "--out-dir", "exported"], root, env=_CLI_ENV).exit_code == 0
    (root / "exported" / "hello.yaml").rename(root / "exported" / "pipeline.yaml")

    code, report = compile_json(root)
    assert code == 0, report
    by_output = {Path(r["output"]).name: r for r in report["results"]}
    assert by_output["hello.yaml"]["status"] == "written" and by_output["hello.yaml"]["function"] == "hello"
    built = by_output["pipeline.tar.gz"]
    assert built["status"] == "written" and built["function"] == "build" and built["pipeline_name"] == "exported"
    with tarfile.open(root / "dist" / "pipeline.tar.gz") as archive:
        assert archive.getnames() == ["pipeline.yaml"]
    commit(root, "compiled")
    time.sleep(1.1)  # tar's gzip header records the time: a rebuild a second later has other bytes, same content
    code, report = compile_json(root, "--check", "--no-cache")
    assert code == 0 and {r["status"] for r in report["results"]} == {"fresh"}, report

    # the exported pipeline changes: the build's input changed, so the cache misses and --check says stale
    exported = root / "exported" / "pipeline.yaml"
    exported.write_text(exported.read_text().replace("defaultValue: hi", "defaultValue: hello"))
    code, report = compile_json(root, "--check")
    stale = {Path(r["output"]).name: r for r in report["results"]}["pipeline.tar.gz"]
    assert code == 1 and stale["status"] == "stale" and stale["cached"] is False, report
    assert "defaultValue: hello" in stale["diff"]


@pytest.mark.parametrize(("build", "message", "where"), [
    ("echo preparing; echo 'no such table: rides' >&2; exit 3",
     "the build command `echo preparing; echo 'no such table: rides' >&2; exit 3` exited with 3: no such table: rides",
     "pyproject.toml"),
    (f"{sys.executable} failing.py", "exited with 1: ValueError: the runner is misconfigured", "failing.py:4"),
    ("true", "wrote nothing to $KFP_CI_OUTPUT (pipeline.json)", "pyproject.toml"),
    ("echo 'kind: ConfigMap' > \"$KFP_CI_OUTPUT\"",
     "the build's output is not a pipeline package KFP accepts: ", "pyproject.toml"),
])
def test_a_failing_build_is_reported_where_it_failed(tmp_path: Path, build: str, message: str, where: str) -> None:
    root = fresh_repo(tmp_path, "[[tool.kfp-ci.pipelines]]\n"
                                f"build = {json.dumps(build)}\noutput = \"build/pipeline.json\"\n")
    (root / "failing.py").write_text('"""A runner that fails."""\n\n\n'
                                     'raise ValueError("the runner is misconfigured")\n')
    result = kfp_ci(["compile"], root, env=_CLI_ENV)
    assert result.exit_code == 1, result.output
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert message in line, line
    declared = next(i for i, text in enumerate((root / "pyproject.toml").read_text().splitlines(), 1)
                    if text.startswith("build ="))
    expected = f"pyproject.toml:{declared}" if where == "pyproject.toml" else where
    assert f"  {expected}: " in line, line
    assert not (root / "build" / "pipeline.json").exists()
    # the same failure as a GitHub annotation on that file and line
    annotated = kfp_ci(["compile", "--format", "github"], root, env=_CLI_ENV)
    file, _, number = expected.partition(":")
    assert f"::error file={file},line={number}," in annotated.stdout, annotated.stdout


def test_a_build_that_hangs_is_killed_at_the_timeout(tmp_path: Path) -> None:
    root = fresh_repo(tmp_path, '[[tool.kfp-ci.pipelines]]\nbuild = "sleep 60 & sleep 60"\n'
                                'output = "build/pipeline.json"\n')
    started = time.monotonic()
    result = kfp_ci(["compile", "--timeout", "1"], root, env=_CLI_ENV)
    assert result.exit_code == 1 and time.monotonic() - started < 30, result.output
    assert "the build command did not finish within 1 s (--timeout); it was killed" in result.stdout
    leftovers = subprocess.run(["pgrep", "-f", "sleep 60 & sleep 60"], capture_output=True, text=True).stdout.split()
    assert leftovers == [], "the build's process group was not killed"


def test_check_refuses_a_build_that_overwrites_the_committed_file(tmp_path: Path) -> None:
    root = fresh_repo(tmp_path, tfx_table(inputs=False))
    assert kfp_ci(["compile"], root, env=_CLI_ENV).exit_code == 0
    commit(root, "built")
    output = root / "build" / "pipeline.json"
    committed = output.read_bytes()
    runner = root / "tfx_pipeline.py"
    runner.write_text(runner.read_text().replace('os.environ.get("KFP_CI_OUTPUT", "build/pipeline.json")',
                                                 '"build/pipeline.json"').replace("ROWS = 1000", "ROWS = 7"))
    result = kfp_ci(["compile", "--check"], root, env=_CLI_ENV)
    assert result.exit_code == 1, result.output
    assert "the build wrote build/pipeline.json itself; it must write the path in $KFP_CI_OUTPUT" in result.stdout
    assert output.read_bytes() == committed


def test_without_inputs_a_build_always_runs(tmp_path: Path) -> None:
    root = fresh_repo(tmp_path, tfx_table(inputs=False))
    for _ in range(2):
        code, report = compile_json(root)
        assert code == 0 and report["results"][0]["cached"] is False


@pytest.mark.parametrize(("table", "message"), [
    ('build = "make pipeline"\n', "has 'build' but no 'output'"),
    ('build = " "\noutput = "x.json"\n', "build is empty"),
    ('source = "p.py"\ninputs = ["*.py"]\n', "inputs needs 'build'"),
    ('output = "x.json"\n', "needs a 'source' (path/to/file.py:function) or a 'build' command"),
])
def test_build_config_errors_are_one_line(tmp_path: Path, table: str, message: str) -> None:
    root = fresh_repo(tmp_path, "[[tool.kfp-ci.pipelines]]\n" + table)
    result = kfp_ci(["compile"], root, env=_CLI_ENV)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output


@pytest.mark.kfp1
@pytest.mark.slow
def test_a_kfp_1_8_build_is_fresh_although_it_stamps_the_compile_time(tmp_path: Path) -> None:
    """A build that compiles with kfp 1.8 into a .tar.gz (TFX's KubeflowDagRunner does): --check ignores the stamp."""
    venv = Path(os.environ.get("KFP_CI_KFP1_VENV", HERE.parent.parent / ".venv-kfp1"))
    python = venv / "bin" / "python"
    assert python.exists(), f"{venv} is missing: run scripts/setup-kfp1 (scripts/test does)"
    table = ("[[tool.kfp-ci.pipelines]]\n"
             f'build = "{python} -c \'import os, runpy, kfp; '
             "kfp.compiler.Compiler().compile(runpy.run_path(\\\"v1_style.py\\\")[\\\"v1_style\\\"], "
             "os.environ[\\\"KFP_CI_OUTPUT\\\"])'\"\n"
             'output = "build/pipeline.tar.gz"\n')
    root = fresh_repo(tmp_path, table)
    shutil.copy(HERE / "broken" / "v1_style.py", root / "v1_style.py")
    code, report = compile_json(root)
    assert code == 0, report
    assert report["results"][0]["pipeline_name"] == "v1-style"
    commit(root, "built with kfp 1.8")
    time.sleep(1.1)  # the next compile stamps another second
    code, report = compile_json(root, "--check")
    assert code == 0 and report["results"][0]["status"] == "fresh", report
