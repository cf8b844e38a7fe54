"""The actions in a real team's repository, run with act against ``kfp-ci serve`` on loopback (issue 14).

- the PR gate with the user's own kfp pin (2.14.x) and a pipeline module importing pandas (installed for real,
  offline from a wheelhouse, into the cached venv);
- a deploy of the committed compiled file in a venv without kfp, then a second push with the pipeline unchanged:
  nothing uploaded, no run;
- two pipelines in one deploy: ``results`` holds both, with the secret passed by ``secrets: inherit``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from act_helpers import PIPELINE_SOURCE, compile_pipeline, git
from test_act_workflows import PR_EVENT, TOKEN, _client, _printed

from kfp_ci.local import LocalServer, ServerOptions

pytestmark = [pytest.mark.act, pytest.mark.slow]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalServer]:
    options = ServerOptions(data_dir=tmp_path / "kfp", auth="token", tokens={TOKEN: "ci@example.com"},
                            execute=False, run_delay=0.2)
    with LocalServer(options, host="127.0.0.1", port=0) as srv:
        yield srv


PANDAS_SOURCE = '''
import pandas as pd
from kfp import dsl

ROWS = int(pd.Series([1, 2]).sum())  # the module needs pandas to import at all


@dsl.component(base_image="python:3.11-slim")
def make_rows(rows: int) -> int:
    return rows * 2


@dsl.pipeline(name="pandas-ci")
def hello_pipeline(rows: int = ROWS):
    make_rows(rows=rows)
'''

PANDAS_PYPROJECT = '''
[[tool.kfp-ci.pipelines]]
source = "pipelines/hello.py:hello_pipeline"
name = "pandas-ci"
output = "compiled/pandas-ci.yaml"
'''


@pytest.fixture(scope="session")
def kfp214(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with kfp 2.14.6 and pandas (offline from the wheelhouse): what the user compiled the files with."""
    venv = tmp_path_factory.mktemp("kfp214") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--find-links",
                    str(wheelhouse), "kfp==2.14.6", "pandas"], check=True, capture_output=True)
    return venv / "bin" / "python"


def test_pr_gate_passes_with_the_users_kfp_pin_and_pandas(tmp_path: Path, run_act: Any, wheelhouse: Path,
                                                          kfp214: Path) -> None:
    """kfp-version 2.14.6 + requirements.txt (pandas): the PR gate installs both and the files compiled by 2.14 pass."""
    repo = tmp_path / "consumer"
    (repo / "pipelines").mkdir(parents=True)
    (repo / "pyproject.toml").write_text(PANDAS_PYPROJECT, encoding="utf-8")
    (repo / "requirements.txt").write_text("pandas\n", encoding="utf-8")
    (repo / "pipelines" / "hello.py").write_text(PANDAS_SOURCE, encoding="utf-8")
    code = ("import importlib.util,sys; s=importlib.util.spec_from_file_location('p', sys.argv[1]); "
            "m=importlib.util.module_from_spec(s); s.loader.exec_module(m); "
            "from kfp import compiler; compiler.Compiler().compile(m.hello_pipeline, sys.argv[2])")
    (repo / "compiled").mkdir()
    subprocess.run([str(kfp214), "-c", code, str(repo / "pipelines" / "hello.py"),
                    str(repo / "compiled" / "pandas-ci.yaml")], check=True)
    assert "sdkVersion: kfp-2.14.6" in (repo / "compiled" / "pandas-ci.yaml").read_text()
    workflows = repo / ".github" / "workflows"
    workflows.mkdir(parents=True)
    shutil.copy(Path(__file__).resolve().parents[2] / "examples" / "github" / "kfp-pr.yml", workflows)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "README.md").write_text("docs only\n", encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "docs")

    result = run_act(repo, "pull_request", "kfp-pr.yml", event_json=PR_EVENT, install=wheelhouse, timeout=600,
                     variables={"KFP_VERSION": "2.14.6", "KFP_REQUIREMENTS": "requirements.txt"})
    assert result.returncode == 0, result.output[-5000:]
    assert "kfp 2.14.6" in result.output  # the venv's kfp, printed by the install step
    assert "::error" not in result.output
    assert "ModuleNotFoundError" not in result.output
    # The plan: a docs-only PR deploys nothing; no token was given, so it is in the summary with a notice.
    summary = "\n".join(line.split("Summary - ", 1)[-1] for line in result.output.splitlines())
    assert "| base `main` | **unchanged** |" in summary, summary[-3000:]
    assert "plan not posted on the pull request: no GITHUB_TOKEN" in result.output


def test_deploy_uploads_the_committed_file_without_kfp_then_an_unchanged_push_does_nothing(
        consumer: Path, run_act: Any, server: LocalServer, wheelhouse: Path, tmp_path: Path) -> None:
    """compile auto: core install only (no kfp in the venv), upload + run; then a docs-only push: no upload, no run."""
    variables = {"KFP_HOST": server.url, "KFP_AUTH": "token"}
    first = run_act(consumer, "push", "kfp-deploy.yml", variables=variables, secrets={"KFP_TOKEN": TOKEN},
                    install=wheelhouse, timeout=600)
    assert first.returncode == 0, first.output[-5000:]
    assert "uploading committed compiled files, kfp is not installed" in first.output
    printed = _printed(first.output, "deployed")
    assert printed["version-action"] == "uploaded" and printed["run-state"] == "SUCCEEDED", first.output[-3000:]
    summary = "\n".join(line.split("Summary - ", 1)[-1] for line in first.output.splitlines())
    assert "| package | compiled/hello-ci.yaml (committed file, not recompiled) |" in summary
    assert re.search(r"\| content hash \| sha256:[0-9a-f]{64} \|", summary)
    venvs = [p for p in (tmp_path / "cache").iterdir() if (p / "bin" / "kfp-ci").exists()]
    assert len(venvs) == 1
    no_kfp = subprocess.run([str(venvs[0] / "bin" / "python"), "-c", "import kfp"], capture_output=True, check=False)
    assert no_kfp.returncode != 0  # the deploy venv has no kfp at all

    client = _client(server)
    [pipeline] = client.list_pipelines()
    assert len(client.list_pipeline_versions(pipeline.id)) == 1
    assert len(client.list_runs()) == 1

    # A second push that leaves the pipeline alone: nothing uploaded, no run started (the cached venv is reused).
    (consumer / "README.md").write_text("docs only\n", encoding="utf-8")
    git(consumer, "add", "-A")
    git(consumer, "commit", "-q", "-m", "docs only")
    second = run_act(consumer, "push", "kfp-deploy.yml", variables=variables, secrets={"KFP_TOKEN": TOKEN},
                     install=wheelhouse, timeout=600)
    assert second.returncode == 0, second.output[-5000:]
    assert "stub cache hit" in second.output and "Reusing the cached venv" in second.output
    again = _printed(second.output, "deployed")
    assert again["version-action"] == "unchanged", second.output[-3000:]
    assert again["version-id"] == printed["version-id"] and again["run-id"] == ""
    assert len(client.list_pipeline_versions(pipeline.id)) == 1
    assert len(client.list_runs()) == 1
    assert TOKEN not in first.output + second.output


SECOND_PIPELINE = PIPELINE_SOURCE.replace('name="hello-ci"', 'name="hello-two"')

TWO_PYPROJECT = '''
[tool.kfp-ci]
experiment = "ci"

[[tool.kfp-ci.pipelines]]
source = "pipelines/hello.py:hello_pipeline"
name = "hello-ci"
output = "compiled/hello-ci.yaml"

[[tool.kfp-ci.pipelines]]
source = "pipelines/two.py:hello_pipeline"
name = "hello-two"
output = "compiled/hello-two.yaml"
'''

INHERIT_CALLER = textwrap.dedent('''
    name: Deploy two
    on: workflow_dispatch
    permissions: {}
    jobs:
      deploy:
        permissions:
          contents: read
        uses: kfp-ci/kfp-ci/.github/workflows/kfp-deploy.yml@v1 # zizmor: ignore[unpinned-uses] -- test
        with:
          host: ${{ vars.KFP_HOST }}
          auth: token
          run: true
        secrets: inherit
      report:
        name: Report
        needs: deploy
        runs-on: ubuntu-latest
        timeout-minutes: 5
        permissions: {}
        steps:
          - env:
              RESULTS: ${{ needs.deploy.outputs.results }}
              VERSION_NAME: ${{ needs.deploy.outputs.version-name }}
            run: |
              printf 'two results=%s\\n' "$RESULTS"
              printf 'two version-name=%s\\n' "$VERSION_NAME"
''')


def test_two_pipelines_fill_results_with_both_and_inherit_the_secret(consumer: Path, run_act: Any,
                                                                     server: LocalServer) -> None:
    """Deploy both pipelines of [tool.kfp-ci]: `results` has one object each; KFP_TOKEN arrives by inherit."""
    (consumer / "pyproject.toml").write_text(TWO_PYPROJECT, encoding="utf-8")
    (consumer / "pipelines" / "two.py").write_text(SECOND_PIPELINE, encoding="utf-8")
    compile_pipeline(consumer / "pipelines" / "two.py", consumer / "compiled" / "hello-two.yaml")
    (consumer / ".github" / "workflows" / "two.yml").write_text(INHERIT_CALLER, encoding="utf-8")
    git(consumer, "add", "-A")
    git(consumer, "commit", "-q", "-m", "two pipelines")
    result = run_act(consumer, "workflow_dispatch", "two.yml", variables={"KFP_HOST": server.url},
                     secrets={"KFP_TOKEN": TOKEN})
    assert result.returncode == 0, result.output[-5000:]
    printed = _printed(result.output, "two")
    results = json.loads(printed["results"])
    assert [r["pipeline"] for r in results] == ["hello-ci", "hello-two"]
    client = _client(server)
    by_name = {p.display_name or p.name: p for p in client.list_pipelines()}
    for entry in results:
        assert entry["version_action"] == "uploaded" and entry["run_id"] and entry["run_state"] == "SUCCEEDED"
        versions = client.list_pipeline_versions(by_name[entry["pipeline"]].id)
        assert [v.id for v in versions] == [entry["version_id"]]
        assert client.get_run(entry["run_id"]).pipeline_version_id == entry["version_id"]
    assert printed["version-name"] == results[-1]["version_name"]  # the single-value outputs: the last one
    assert TOKEN not in result.output
    assert os.environ.get("KFP_TOKEN") != TOKEN  # only act's environment held it
