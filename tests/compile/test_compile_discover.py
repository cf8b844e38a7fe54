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
