"""The README's command reference is generated from the CLI and must match it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_command_reference_matches_the_cli() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen-cli-docs"), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_readme_names_both_setup_commands_and_they_exist() -> None:
    text = (ROOT / "README.md").read_text()
    for script in ("scripts/demo", "scripts/test"):
        assert f"bash {script}" in text
    assert (ROOT / "scripts" / "test").is_file()
    assert (ROOT / ".ci" / "run").read_text().count("scripts/test") == 1
