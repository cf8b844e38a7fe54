"""The deploy summary as users read it: text, JSON, GitHub step outputs, job summary with a Mermaid DAG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kfp_ci.deploy._report import DeployResult, dag_of, emit, mermaid_dag


def _spec() -> dict[str, object]:
    return {"root": {"dag": {"tasks": {
        "add": {"componentRef": {"name": "comp-add"}},
        "square": {"dependentTasks": ["add"],
                   "inputs": {"parameters": {"x": {"taskOutputParameter": {"producerTask": "add"}}}}},
        "report-2": {"inputs": {"artifacts": {"m": {"taskOutputArtifact": {"producerTask": "square"}}}}},
    }}}}


def test_dag_from_dependencies_and_data_edges() -> None:
    dag = dag_of(_spec())
    assert dag == {"add": [], "square": ["add"], "report-2": ["square"]}
    graph = mermaid_dag(dag)
    assert graph.startswith("```mermaid\ngraph TD")
    assert "t_add --> t_square" in graph and "t_square --> t_report_2" in graph
    assert 't_report_2["report-2"]' in graph
    assert mermaid_dag({}) == ""


def _result() -> DeployResult:
    return DeployResult(pipeline="train", namespace="team-a", host="http://h/pipeline", pipeline_id="p1",
                        version_name="abc1234", version_id="v1", version_action="uploaded", run_id="r1",
                        run_url="http://h/pipeline/#/runs/details/r1", run_state="SUCCEEDED", run_duration=75.0,
                        recurring_run_id="rr1", recurring_action="swapped", schedule="cron '0 0 3 * * *' (UTC)",
                        next_fire=["2026-01-02 03:00:00"], dag=dag_of(_spec()))


def test_text_json_outputs_and_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    outputs, summary = tmp_path / "o", tmp_path / "s.md"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    emit([_result()], "text")
    text = capsys.readouterr().out
    assert "version" in text and "abc1234 (uploaded, v1)" in text and "1m15s" in text
    assert "http://h/pipeline/#/runs/details/r1" in text and "next fire (UTC)" in text
    lines = outputs.read_text().splitlines()
    assert lines[:-1] == [
        "pipeline-id=p1", "version-id=v1", "version-name=abc1234", "version-action=uploaded", "run-id=r1",
        "run-url=http://h/pipeline/#/runs/details/r1", "run-state=SUCCEEDED", "recurring-run-id=rr1"]
    assert lines[-1].startswith("results=")
    [entry] = json.loads(lines[-1].split("=", 1)[1])
    assert entry["pipeline"] == _result().pipeline and entry["version_action"] == "uploaded"
    assert entry["run_id"] == "r1" and entry["recurring_run_id"] == "rr1"
    md = summary.read_text()
    assert "| run | [r1](http://h/pipeline/#/runs/details/r1) |" in md and "```mermaid" in md
    emit([_result()], "json")
    data = json.loads(capsys.readouterr().out)
    assert data["version_name"] == "abc1234" and "dag" not in data


def test_outputs_without_a_run_are_empty_strings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = tmp_path / "o"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    emit([DeployResult(pipeline="p", pipeline_id="p1", version_name="v", version_id="v1")], "text")
    assert "run-id=\n" in outputs.read_text() and "recurring-run-id=\n" in outputs.read_text()
