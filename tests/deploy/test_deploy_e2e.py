"""kfp-ci deploy end to end against the embedded server over real HTTP, checked with the real kfp.Client."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kfp_ci.cli import main

from .gitrepo import commit_all, git, new_revision

ENV = {"KFP_CI_CONFIG": "", "GITHUB_OUTPUT": "", "GITHUB_STEP_SUMMARY": "", "GITHUB_ACTIONS": "",
       "KFP_CI_TOKEN": "", "KFP_CI_PASSWORD": ""}


def kfp_ci(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, Any]:
    """Run kfp-ci; returns (exit code, stderr+stdout, parsed JSON from stdout when --output json)."""
    runner = CliRunner()
    result = runner.invoke(main, list(args), env={**ENV, **(env or {})}, catch_exceptions=False)
    data = None
    if "json" in args:
        text = result.stdout
        start = text.find("{") if text.find("{") >= 0 and (text.find("[") < 0 or text.find("{") < text.find("["))\
            else text.find("[")
        data = json.loads(text[start:]) if start >= 0 else None
    return result.exit_code, result.output, data


def sdk(url: str, namespace: str | None = None) -> Any:
    import kfp

    return kfp.Client(host=url, namespace=namespace or "kubeflow")


def versions_of(url: str, pipeline: str) -> list[str]:
    client = sdk(url)
    pid = client.get_pipeline_id(pipeline)
    listed = client.list_pipeline_versions(pid, page_size=100)
    return sorted(v.display_name for v in (listed.pipeline_versions or []))


def recurring(url: str, namespace: str | None = None) -> list[Any]:
    listed = sdk(url).list_recurring_runs(page_size=100, namespace=namespace)
    return list(listed.recurring_runs or [])


def short_sha(root: Path) -> str:
    return git(root, "rev-parse", "--short=7", "HEAD")


def test_first_deploy_unchanged_redeploy_new_commit_and_conflict(
    kfp_server: Callable[..., Any], repo: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    srv = kfp_server(execute=False)
    root = repo("add-square")
    monkeypatch.chdir(root)
    first = short_sha(root)
    code, out, data = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "-o", "json")
    assert code == 0, out
    assert data["pipeline_action"] == "created" and data["version_action"] == "uploaded"
    assert data["version_name"] == first
    # KFP's forced first version (named after the pipeline) is not left behind.
    assert versions_of(srv.url, "add-square") == [first]

    code, out, data = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "-o", "json")
    assert code == 0 and data["version_action"] == "unchanged" and data["pipeline_action"] == "found"
    assert versions_of(srv.url, "add-square") == [first]

    # A commit that leaves the package alone (docs only): nothing uploaded, the latest version reported.
    commit_all(root, "docs only")
    code, out, data = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "--run", "-o", "json")
    assert code == 0 and data["version_action"] == "unchanged" and data["version_name"] == first, out
    assert data["run_id"] is None and "unchanged" in data["run_skipped"]
    assert versions_of(srv.url, "add-square") == [first] and not (sdk(srv.url).list_runs().runs or [])

    new_revision(root, "second commit")
    second = short_sha(root)
    code, out, data = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "-o", "json")
    assert code == 0 and data["version_action"] == "uploaded" and data["version_name"] == second
    assert versions_of(srv.url, "add-square") == sorted([first, second])
    assert len(sdk(srv.url).list_pipelines(page_size=100).pipelines) == 1  # never a pipeline per commit

    # A different package under an existing version name is a conflict, never an overwrite.
    new_revision(root, "changed pipeline")
    code, out, _ = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "--version-name", second)
    assert code == 4 and "refusing to overwrite" in out and "Traceback" not in out
    assert versions_of(srv.url, "add-square") == sorted([first, second])


def test_kfp_1_8_first_version_forced_name_is_replaced(
    kfp_server: Callable[..., Any], repo: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """v1beta1 has no empty pipeline: upload, upload the real version, delete the one named after the pipeline."""
    from kfp_ci.client import Client

    srv = kfp_server(execute=False, compat="1.8")
    root = repo("add-square")
    monkeypatch.chdir(root)
    code, out, data = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "-o", "json")
    assert code == 0, out
    assert data["pipeline_action"] == "created" and data["version_name"] == short_sha(root)
    client = Client(srv.url)
    assert client.server.api == "v1beta1"
    names = [v.name for v in client.list_pipeline_versions(data["pipeline_id"])]
    assert names == [short_sha(root)]
    code, out, data = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "-o", "json")
    assert code == 0 and data["version_action"] == "unchanged"


def test_dry_run_changes_nothing(kfp_server: Callable[..., Any], repo: Callable[..., Path],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    srv = kfp_server(execute=False)
    monkeypatch.chdir(repo("add-square"))
    code, out, data = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "--run", "--schedule", "0 3 * * *",
                             "--dry-run", "-o", "json")
    assert code == 0, out
    assert data["dry_run"] and data["pipeline_action"] == "would create" and data["version_action"] == "would upload"
    assert any("create pipeline 'add-square'" in step for step in data["plan"])
    assert data["next_fire"] and data["next_fire"][0].endswith("03:00:00")
    assert not (sdk(srv.url).list_pipelines().pipelines or [])
    assert recurring(srv.url) == [] and not (sdk(srv.url).list_runs().runs or [])
    # On an existing pipeline with a schedule: a new commit would upload and swap; nothing changes.
    root = Path.cwd()
    assert kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "--schedule", "0 3 * * *")[0] == 0
    before = (versions_of(srv.url, "add-square"), [(r.recurring_run_id, r.status) for r in recurring(srv.url)])
    new_revision(root, "next")
    code, out, data = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "--schedule", "0 4 * * *", "--run",
                             "--dry-run", "-o", "json")
    assert code == 0, out
    assert data["version_action"] == "would upload" and data["recurring_action"] == "would swap"
    assert data["run_state"] == "would start" and data["run_id"] is None
    after = (versions_of(srv.url, "add-square"), [(r.recurring_run_id, r.status) for r in recurring(srv.url)])
    assert after == before and not (sdk(srv.url).list_runs().runs or [])


def test_run_parameters_are_typed_and_sent(kfp_server: Callable[..., Any], repo: Callable[..., Path],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    srv = kfp_server(execute=False)
    monkeypatch.chdir(repo("add-square"))
    code, out, data = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "--run", "--param", "a=3",
                             "--param", "label=x", "-e", "ci", "-o", "json")
    assert code == 0, out
    run = sdk(srv.url).get_run(data["run_id"])
    assert run.runtime_config.parameters == {"a": 3.0, "label": "x"}
    assert data["run_url"].endswith(f"/#/runs/details/{data['run_id']}")
    assert data["experiment"] == "ci"


@pytest.mark.slow
def test_run_wait_exit_codes_success_and_failure(kfp_server: Callable[..., Any], repo: Callable[..., Path],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    srv = kfp_server(execute=True)
    monkeypatch.chdir(repo("add-square", "always-fails"))
    code, out, data = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "--run", "--wait", "--param", "a=2",
                             "--timeout", "120", "-o", "json")
    assert code == 0, out
    assert data["run_state"] == "SUCCEEDED" and data["run_duration"] is not None
    assert "SUCCEEDED" in out and "RUNNING" in out  # progress lines on stderr
    code, out, data = kfp_ci("deploy", "always-fails.yaml", "--host", srv.url, "--run", "--wait", "--timeout", "120")
    assert code == 1, out
    assert "ended FAILED" in out and "Traceback" not in out


def test_wait_timeout_exit_5_and_terminate(kfp_server: Callable[..., Any], repo: Callable[..., Path],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    srv = kfp_server(execute=False, run_delay=30.0)
    monkeypatch.chdir(repo("add-square"))
    code, out, _ = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "--run", "--wait", "--timeout", "1.5",
                          "--terminate-on-timeout")
    assert code == 5, out
    assert "terminated it" in out
    runs = sdk(srv.url).list_runs().runs
    assert len(runs) == 1 and runs[0].state in ("CANCELING", "CANCELED")


def _enabled(url: str, namespace: str | None = None) -> list[Any]:
    return [r for r in recurring(url, namespace) if r.status == "ENABLED"]


def test_schedule_swap_keeps_one_enabled_recurring_run(kfp_server: Callable[..., Any], repo: Callable[..., Path],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    srv = kfp_server(execute=False)
    root = repo("add-square")
    monkeypatch.chdir(root)
    code, out, data = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "--schedule", "0 3 * * *", "-o", "json")
    assert code == 0, out
    assert data["recurring_action"] == "created"
    first_rr = data["recurring_run_id"]
    enabled = _enabled(srv.url)
    assert [r.recurring_run_id for r in enabled] == [first_rr]
    assert enabled[0].trigger.cron_schedule.cron == "0 0 3 * * *"
    assert enabled[0].pipeline_version_reference.pipeline_version_id == data["version_id"]

    code, out, data = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "--schedule", "0 3 * * *", "-o", "json")
    assert data["recurring_action"] == "unchanged" and data["recurring_run_id"] == first_rr

    new_revision(root, "new model")
    code, out, data = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "--schedule", "0 3 * * *", "-o", "json")
    assert code == 0 and data["recurring_action"] == "swapped"
    all_rr = recurring(srv.url)
    assert [r.recurring_run_id for r in all_rr] == [data["recurring_run_id"]] != [first_rr]
    assert all_rr[0].pipeline_version_reference.pipeline_version_id == data["version_id"]

    new_revision(root, "keep the old one")
    code, out, data = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "--every", "6h", "--keep-old",
                             "-o", "json")
    assert code == 0 and data["recurring_action"] == "swapped"
    assert len(recurring(srv.url)) == 2 and [r.recurring_run_id for r in _enabled(srv.url)] == [
        data["recurring_run_id"]]


def test_interrupted_swap_converges_on_the_next_deploy(kfp_server: Callable[..., Any], repo: Callable[..., Path],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    srv = kfp_server(execute=False, faults=True)
    root = repo("add-square")
    monkeypatch.chdir(root)
    assert kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "--schedule", "@daily")[0] == 0
    new_revision(root, "next")
    old = [r.recurring_run_id for r in _enabled(srv.url)]
    # The server fails every enable: the deploy stops after creating the new one, removes it, keeps the old one.
    srv.add_fault(match=r"recurringruns/[^/]+:enable", method="POST", count=100, action="status", status=500,
                  body='{"code": 14, "message": "unavailable"}', content_type="application/json")
    code, out, _ = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "--schedule", "@daily")
    assert code == 4, out
    assert f"{old[0]} stays the enabled one" in out and "Traceback" not in out
    assert [r.recurring_run_id for r in _enabled(srv.url)] == old  # still one enabled: the old one
    srv.clear_faults()
    # Disabling the old one fails: the new one is disabled again (rolled back), the old one stays enabled.
    srv.add_fault(match=rf"recurringruns/{old[0]}:disable", method="POST", count=100, action="status", status=500,
                  body='{"code": 14, "message": "unavailable"}', content_type="application/json")
    code, out, _ = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "--schedule", "@daily")
    assert code == 4, out
    assert "rolled back" in out and f"{old[0]} stays the enabled one" in out
    assert [r.recurring_run_id for r in _enabled(srv.url)] == old
    srv.clear_faults()
    code, out, data = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "--schedule", "@daily", "-o", "json")
    assert code == 0, out
    assert [r.recurring_run_id for r in recurring(srv.url)] == [data["recurring_run_id"]]
    assert [r.recurring_run_id for r in _enabled(srv.url)] == [data["recurring_run_id"]]


@pytest.mark.parametrize("compat", ["2.17", "2.5"])
def test_always_latest_recurring_run_created_only_once(kfp_server: Callable[..., Any], repo: Callable[..., Path],
                                                      monkeypatch: pytest.MonkeyPatch, compat: str) -> None:
    srv = kfp_server(execute=False, compat=compat)
    root = repo("add-square")
    monkeypatch.chdir(root)
    code, out, data = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "--every", "1h", "--latest",
                             "-o", "json")
    assert code == 0, out
    rr = data["recurring_run_id"]
    (only,) = recurring(srv.url)
    assert only.pipeline_version_reference.pipeline_version_id in (None, "")
    new_revision(root, "v2")
    code, out, data = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "--every", "1h", "--latest",
                             "-o", "json")
    assert code == 0 and data["version_action"] == "uploaded"
    assert data["recurring_action"] == "unchanged" and data["recurring_run_id"] == rr
    assert len(recurring(srv.url)) == 1


def test_two_concurrent_deploys_both_upload_and_leave_one_recurring_run(
    kfp_server: Callable[..., Any], repo: Callable[..., Path], tmp_path: Path
) -> None:
    from kfp_ci.client import Client
    from kfp_ci.deploy import deploy

    srv = kfp_server(execute=False)
    root = repo("add-square")
    other = tmp_path / "clone"
    git(root, "clone", "-q", str(root), str(other))
    new_revision(other, "a different commit")
    errors: list[BaseException] = []
    results: list[Any] = []
    barrier = threading.Barrier(2)

    def one(path: Path) -> None:
        try:
            barrier.wait(10)
            results.append(deploy(Client(srv.url), path / "add-square.yaml", schedule="0 4 * * *"))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(p,)) for p in (root, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(r.version_name for r in results) == sorted([short_sha(root), short_sha(other)])
    assert versions_of(srv.url, "add-square") == sorted([short_sha(root), short_sha(other)])
    assert len(sdk(srv.url).list_pipelines().pipelines) == 1
    assert len(_enabled(srv.url)) == 1


def test_github_outputs_and_job_summary(kfp_server: Callable[..., Any], repo: Callable[..., Path],
                                        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    srv = kfp_server(execute=False)
    monkeypatch.chdir(repo("add-square"))
    outputs, summary = tmp_path / "out.txt", tmp_path / "summary.md"
    outputs.write_text("")
    code, out, _ = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "--run", "--schedule", "@daily",
                          env={"GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(summary),
                               "GITHUB_ACTIONS": "true"})
    assert code == 0, out
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert set(values) == {"pipeline-id", "version-id", "version-name", "version-action", "run-id", "run-url",
                           "run-state", "recurring-run-id", "results"}
    [entry] = json.loads(values["results"])
    assert entry["run_id"] == values["run-id"] and entry["version_action"] == "uploaded"
    assert values["run-url"].endswith(values["run-id"]) and values["recurring-run-id"]
    text = summary.read_text()
    assert "| version |" in text and values["run-id"] in text
    assert "```mermaid" in text and "t_add --> t_square" in text


def test_multi_user_namespaces(kfp_server: Callable[..., Any], repo: Callable[..., Path],
                               monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    srv = kfp_server(execute=False, multi_user=True, auth="token",
                     tokens={"tok-alice-123456": "alice@example.com", "tok-bob-1234567": "bob@example.com"},
                     profiles={"alice@example.com": ("team-a",), "bob@example.com": ("team-b",)})
    monkeypatch.chdir(repo("add-square"))
    alice = {"KFP_CI_TOKEN": "tok-alice-123456"}
    code, out, data = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "-n", "team-a", "--auth", "token",
                             "--run", "--schedule", "@daily", "-o", "json", env=alice)
    assert code == 0, out
    assert data["namespace"] == "team-a" and data["pipeline_action"] == "created"
    # Bob deploys the same pipeline name into his own namespace: a separate pipeline.
    code, out, data_b = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "-n", "team-b", "--auth", "token",
                               "-o", "json", env={"KFP_CI_TOKEN": "tok-bob-1234567"})
    assert code == 0, out
    assert data_b["pipeline_id"] != data["pipeline_id"] and data_b["pipeline_action"] == "created"
    # Alice cannot deploy into Bob's namespace.
    code, out, _ = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "-n", "team-b", "--auth", "token",
                          env=alice)
    assert code in (3, 4) and "Traceback" not in out


def test_sources_and_config_are_compiled_then_deployed(kfp_server: Callable[..., Any], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from .gitrepo import make_repo

    srv = kfp_server(execute=False)
    source = (Path(__file__).parent / "pipelines_src.py").read_text()
    root = make_repo(tmp_path / "proj", {
        "pipes.py": source,
        "pyproject.toml": '[tool.kfp-ci]\nexperiment = "nightly"\n\n[[tool.kfp-ci.pipelines]]\n'
                          'source = "pipes.py:needs_input"\nname = "needs-input"\noutput = "out/needs-input.yaml"\n'
                          'parameters = { epochs = 2 }\n',
    })
    monkeypatch.chdir(root)
    # Every pipeline of [tool.kfp-ci], with its parameters and experiment.
    code, out, data = kfp_ci("deploy", "--host", srv.url, "--run", "-o", "json")
    assert code == 0, out
    assert data["pipeline"] == "needs-input" and data["experiment"] == "nightly"
    assert (root / "out" / "needs-input.yaml").is_file()
    assert sdk(srv.url).get_run(data["run_id"]).runtime_config.parameters == {"epochs": 2}
    # A source file.py:function.
    code, out, data = kfp_ci("deploy", "pipes.py:add_square", "--host", srv.url, "-o", "json")
    assert code == 0, out
    assert data["pipeline"] == "add-square" and data["version_name"] == short_sha(root)
