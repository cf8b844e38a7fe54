"""``kfp-ci gate`` as a user runs it: requirements from flags or from [tool.kfp-ci], table, JSON, job summary.

The KFP server is the v1beta1 fake (httpx.MockTransport) handed to the command in place of the network client;
the end-to-end version against the embedded server is in test_gate_e2e.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kfp_ci.cli import main
from kfp_ci.errors import GateFailed

from .fake_v1 import FakeV1, V1Run


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeV1:
    server = FakeV1([
        V1Run("r0", "2026-01-01T00:00:00Z", {"r2": 0.95, "mse": 50.0}),
        V1Run("r1", "2026-01-02T00:00:00Z", {"r2": 0.90, "mse": 61.0}),
    ])
    import kfp_ci.gate._command

    monkeypatch.setattr(kfp_ci.gate._command, "client_from_settings", lambda settings: server.client())
    return server


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    base = {"KFP_CI_CONFIG": "", "GITHUB_ACTIONS": "", "GITHUB_STEP_SUMMARY": ""}
    return CliRunner().invoke(main, list(args), env={**base, **(env or {})})


def project(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text('[tool.kfp-ci]\nhost = "http://kfp.test"\n\n[[tool.kfp-ci.pipelines]]\n'
                    'source = "pipeline.py:energy"\nname = "building-energy"\n' + body)
    return path


def test_requirements_from_the_project_table(fake: FakeV1, tmp_path: Path) -> None:
    config = project(tmp_path, 'require = ["r2>=0.8", "mse<=120"]\nmax-regression = { r2 = 0.02 }\n'
                               'baseline = "last-success"\n')
    result = run("--config", str(config), "gate", "r1", "--pipeline", "building-energy")
    assert result.exit_code == 1
    assert "r2      0.9    >= 0.8     0.95 (-0.02 allowed)  FAIL: dropped 0.05 from baseline 0.95 (max 0.02)" \
        in result.output
    assert "mse     61     <= 120     50                    pass" in result.output  # shown, not gated
    assert "kfp-ci: error: run r1 did not pass the gate: r2: dropped 0.05 from baseline 0.95 (max 0.02)" \
        in result.output
    # flags override the table
    relaxed = run("--config", str(config), "gate", "r1", "--pipeline", "building-energy",
                  "--max-regression", "r2=0.1")
    assert relaxed.exit_code == 0, relaxed.output
    assert relaxed.output.rstrip().endswith("PASSED")


def test_unknown_pipeline_names_the_configured_ones(fake: FakeV1, tmp_path: Path) -> None:
    config = project(tmp_path, 'require = ["r2>=0.8"]\n')
    result = run("--config", str(config), "gate", "r1", "--pipeline", "nope")
    assert result.exit_code == 2
    assert "pipeline 'nope' is not in [tool.kfp-ci] (pipelines: building-energy)" in result.output
    assert fake.requests == []


def test_json_output_and_github_summary(fake: FakeV1, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    result = run("gate", "r1", "--host", "http://kfp.test", "--require", "r2>=0.8", "-o", "json",
                 env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["passed"] is True and report["metrics"] == {"train-abc.r2": 0.9, "train-abc.mse": 61.0}
    assert report["checks"][0]["direction"] == "higher-is-better"
    assert report["history"] == {"r2": [{"run_id": "r0", "value": 0.95}, {"run_id": "r1", "value": 0.9}]}
    markdown = summary.read_text()
    assert markdown.startswith("### kfp-ci gate: run `r1` passed")
    assert "| r2 | 0.9 | >= 0.8 | - | ✅ pass |" in markdown
    assert "xychart-beta" in markdown and 'x-axis ["r0", "r1"]' in markdown and "line [0.95, 0.9]" in markdown


def test_missing_metric_is_one_clear_line(fake: FakeV1) -> None:
    result = run("gate", "r1", "--host", "http://kfp.test", "--require", "accuracy>=0.9")
    assert result.exit_code == 1
    assert "kfp-ci: error: run r1 has no metric 'accuracy' (its metrics: mse, r2)" in result.output
    assert "Traceback" not in result.output


def test_library_call_reuses_the_callers_client(tmp_path: Path) -> None:
    """What deploy does after --run --wait: hand its logged-in client over instead of logging in again."""
    from kfp_ci.config import Settings
    from kfp_ci.gate import gate_command

    server = FakeV1([V1Run("r1", "2026-01-02T00:00:00Z", {"r2": 0.9})])
    with server.client() as client:
        assert gate_command(Settings(), "r1", require=("r2>=0.8",), client=client) == 0
        with pytest.raises(GateFailed, match=r"r2: 0\.9 is not >= 0\.95"):
            gate_command(Settings(), "r1", require=("r2>=0.95",), client=client)
        client.get_run("r1")  # still open
