"""kfp-ci compiles the pipelines kfp finds: aliases, blocks, wrappers, imported pipelines; not look-alikes.
Also ``file.py:func`` on the command line, and an output layout that cannot collide."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from compile_helpers import KFP, as_json, kfp_ci

HELLO = '''

@kdsl.component(base_image="python:3.11")
def hello(text: str) -> str:
    return text
'''
TRICKY = '''import os
from kfp import dsl as kdsl
from kfp.dsl import pipeline as p
''' + HELLO + '''

if os.environ.get("KFP_CI_TEST_NEVER_SET") is None:
    @kdsl.pipeline(name="in-if")
    def in_if(text: str = "a") -> None:
        hello(text=text)

try:
    @p(name="in-try")
    def in_try(text: str = "b") -> None:
        hello(text=text)
except ImportError:
    pass


def _wrapped(text: str = "c") -> None:
    hello(text=text)


wrapped = kdsl.pipeline(name="wrapped")(_wrapped)
'''
DEFS = '''from kfp import dsl


@dsl.container_component
def hi() -> dsl.ContainerSpec:
    return dsl.ContainerSpec(image="alpine", command=["true"])


@dsl.pipeline(name="defined-here")
def defined_here() -> None:
    hi()
'''
NOT_KFP = '''from workflows import pipeline  # another library's decorator, not kfp's


@pipeline
def etl():
    return 1
'''


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "p"
    src.mkdir()
    (src / "tricky.py").write_text(TRICKY)
    (src / "defs.py").write_text(DEFS)
    (src / "uses.py").write_text("from defs import defined_here  # noqa: F401\n")
    (src / "uses_too.py").write_text("from defs import defined_here as again  # noqa: F401\n")
    (src / "etl.py").write_text(NOT_KFP)
    (src / "workflows.py").write_text("def pipeline(func):\n    return func\n")
    return tmp_path


def _names(result_json: dict[str, Any]) -> set[tuple[str, str]]:
    return {(r["source"], r["function"]) for r in result_json["results"]}


def test_every_pipeline_kfp_sees_is_compiled_once(tree: Path) -> None:
    result = kfp_ci(["compile", "p", "--out-dir", "out", "--format", "json"], tree)
    assert result.exit_code == 0, result.output  # the look-alike `@pipeline` in etl.py does not make it red
    report = as_json(result)
    assert _names(report) == {("p/tricky.py", "in_if"), ("p/tricky.py", "in_try"), ("p/tricky.py", "wrapped"),
                              ("p/defs.py", "defined_here")}  # imported twice, compiled once where defined
    assert sorted(p.name for p in (tree / "out").iterdir()) == ["defined-here.yaml", "in-if.yaml", "in-try.yaml",
                                                               "wrapped.yaml"]


@pytest.mark.parametrize(("file", "function"), [("tricky.py", "in_if"), ("tricky.py", "in_try"),
                                                ("tricky.py", "wrapped"), ("uses.py", "defined_here")])
def test_the_bytes_equal_kfp_dsl_compile(tree: Path, file: str, function: str) -> None:
    result = kfp_ci(["compile", f"p/{file}", "--function", function, "--out-dir", "out"], tree)
    assert result.exit_code == 0, result.output
    (written,) = (tree / "out").iterdir()
    subprocess.run([str(KFP), "dsl", "compile", "--py", f"p/{file}", "--function", function, "--output", "ref.yaml"],
                   cwd=tree, check=True, capture_output=True)
    assert written.read_bytes() == (tree / "ref.yaml").read_bytes()


def test_a_file_that_imports_a_pipeline_compiles_it_when_named_alone(tree: Path) -> None:
    result = kfp_ci(["compile", "p/uses.py", "--out-dir", "out", "--format", "json"], tree)
    assert result.exit_code == 0, result.output
    assert _names(as_json(result)) == {("p/uses.py", "defined_here")}


def test_a_look_alike_named_alone_gets_kfps_answer(tree: Path) -> None:
    result = kfp_ci(["compile", "p/etl.py", "--format", "json"], tree)
    assert result.exit_code == 1
    (entry,) = as_json(result)["results"]
    assert entry["status"] == "failed" and entry["error"]["file"] == "p/etl.py"
    assert "no kfp pipeline in etl.py" in entry["error"]["message"]
    kfp = subprocess.run([str(KFP), "dsl", "compile", "--py", "p/etl.py", "--output", "x.yaml"], cwd=tree,
                         capture_output=True, text=True)
    assert kfp.returncode != 0 and "Got 0 pipeline(s)" in kfp.stderr + kfp.stdout


def test_file_colon_function_on_the_command_line(tree: Path) -> None:
    result = kfp_ci(["compile", "p/tricky.py:wrapped", "--out-dir", "out", "--format", "json"], tree)
    assert result.exit_code == 0, result.output
    assert _names(as_json(result)) == {("p/tricky.py", "wrapped")}
    result = kfp_ci(["compile", "p/missing.py:wrapped"], tree)
    assert result.exit_code == 2 and "p/missing.py: no such file" in result.stderr
    result = kfp_ci(["compile", "p/nothing_here"], tree)
    assert result.exit_code == 2 and "p/nothing_here: no such file or directory" in result.stderr


def test_same_names_collide_flat_and_never_mirrored(tmp_path: Path) -> None:
    for team in ("a", "b"):
        (tmp_path / "src" / team).mkdir(parents=True)
        (tmp_path / "src" / team / "pipeline.py").write_text(DEFS)
    result = kfp_ci(["compile", "src", "--out-dir", "out"], tmp_path)
    assert result.exit_code == 1
    assert "output out/defined-here.yaml is also written by src/a/pipeline.py:defined_here" in result.stdout
    assert "use --layout mirror" in result.stdout
    result = kfp_ci(["compile", "src", "--out-dir", "out", "--layout", "mirror", "--format", "json"], tmp_path)
    assert result.exit_code == 0, result.output
    assert {r["output"] for r in as_json(result)["results"]} == {
        "out/src/a/pipeline/defined-here.yaml", "out/src/b/pipeline/defined-here.yaml"}
    assert kfp_ci(["compile", "src", "--out-dir", "out", "--layout", "mirror", "--check"], tmp_path).exit_code == 0


def test_a_pipeline_imported_into_several_files_is_compiled_once(tree: Path) -> None:
    result = kfp_ci(["compile", "p/uses.py", "p/uses_too.py", "--out-dir", "out", "--format", "json"], tree)
    assert result.exit_code == 0, result.output  # defs.py is not compiled: the first importer compiles it, once
    assert _names(as_json(result)) == {("p/uses.py", "defined_here")}


def test_a_config_entry_for_a_whole_file_applies_to_what_kfp_finds_in_it(tree: Path) -> None:
    (tree / "pyproject.toml").write_text('[tool.kfp-ci]\n\n[[tool.kfp-ci.pipelines]]\nsource = "p/uses.py"\n'
                                         'output = "compiled/imported.yaml"\n')
    result = kfp_ci(["compile", "--format", "json"], tree)
    assert result.exit_code == 0, result.output
    (entry,) = as_json(result)["results"]
    assert (entry["function"], entry["output"]) == ("defined_here", "compiled/imported.yaml")
