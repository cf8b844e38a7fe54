"""Discovery reads sources without importing them and skips venvs, hidden dirs, caches and node_modules."""

from __future__ import annotations

from pathlib import Path

from kfp_ci.compile._discover import discover

PIPELINE = (
    "from kfp import dsl\nimport kfp\n\n@dsl.pipeline\ndef a():\n    pass\n\n"
    "@kfp.dsl.pipeline(name='b')\ndef b():\n    pass\n"
)
NESTED = "\ndef not_one():\n    @dsl.pipeline\n    def inner():\n        pass\n"


def test_discovery_finds_module_level_pipelines_and_skips_the_rest(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "p.py").write_text(PIPELINE + NESTED)
    (tmp_path / "pkg" / "boom.py").write_text("raise SystemExit('imported!')\n")  # never imported
    for skipped in (".hidden", "node_modules", "__pycache__", "venv"):
        (tmp_path / skipped).mkdir()
        (tmp_path / skipped / "p.py").write_text(PIPELINE)
    (tmp_path / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    found, errors = discover([tmp_path])
    assert [(f.source, f.function, f.line) for f in found] == [
        (tmp_path / "pkg" / "p.py", "a", 4), (tmp_path / "pkg" / "p.py", "b", 8)]
    assert errors == []


def test_a_pipeline_file_that_does_not_parse_is_reported(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("from kfp import dsl\n\n@dsl.pipeline\ndef a(:\n    pass\n")
    found, errors = discover([tmp_path])
    assert found == []
    assert [(e.source.name, e.line) for e in errors] == [("bad.py", 4)]
    assert "SyntaxError" in errors[0].message


ALIASES = '''import os
from kfp import dsl as kdsl
from kfp.dsl import pipeline as p
import kfp.dsl as kd

if os.environ.get("X"):
    @kdsl.pipeline
    def in_if():
        pass
try:
    @p(name="t")
    def in_try():
        pass
except ImportError:
    pass

@kd.pipeline()
def module_alias():
    pass

def _f():
    pass

wrapped = kdsl.pipeline(name="w")(_f)
also: object = p(_f)
'''
LOOK_ALIKE = ("from workflows import pipeline\n\n@pipeline\ndef etl():\n    pass\n\n"
              "@dsl.pipeline\ndef no_dsl():\n    pass\n")


def test_aliases_blocks_and_wrappers_are_found_look_alikes_are_not(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(ALIASES)
    (tmp_path / "b.py").write_text(LOOK_ALIKE)
    found, errors = discover([tmp_path])
    assert errors == []
    assert [(f.source.name, f.function) for f in found] == [
        ("a.py", "in_if"), ("a.py", "in_try"), ("a.py", "module_alias"), ("a.py", "wrapped"), ("a.py", "also")]


def test_a_pipeline_imported_from_a_project_module_is_found_at_its_import(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "defs.py").write_text("from kfp import dsl\n\n@dsl.pipeline\ndef train():\n    pass\n")
    (tmp_path / "uses.py").write_text("import os\nfrom pkg.defs import train as t\n")
    (tmp_path / "star.py").write_text("from pkg.defs import *\n")
    found, _ = discover([tmp_path / "uses.py", tmp_path / "star.py"])
    assert [(f.source.name, f.function, f.line) for f in found] == [("uses.py", "t", 2), ("star.py", "train", 1)]


def test_a_syntax_error_still_names_its_pipelines(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("from kfp import dsl\n\n@dsl.pipeline(name='x')\ndef first():\n    pass\n\n"
                                     "@dsl.pipeline\ndef second(:\n    pass\n")
    _, (error,) = discover([tmp_path])
    assert error.line == 8 and error.functions == (("first", 3), ("second", 7))
