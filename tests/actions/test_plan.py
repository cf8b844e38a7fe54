"""``kfp-ci plan``: what a merge deploys, and its one sticky PR comment, against a local fake of GitHub's REST API.

The fake speaks the three calls GitHub documents for issue comments (list with ``Link`` pagination, create,
edit) over a loopback socket; ``kfp-ci plan`` finds it through ``GITHUB_API_URL`` like on GitHub Enterprise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from act_helpers import compile_pipeline, git
from test_act_workflows import CHANGED_SOURCE

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "ghs_fakeGitHubToken0123456789abcdef"
REPO = "acme/pipelines"


@dataclass
class FakeGitHub:
    """Issue comments of one repository; records every request (method, path)."""

    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    status: int | None = None
    """answer every request with this status instead (e.g. 403: a read-only token)"""
    next_id: int = 1000
    url: str = ""


def _handler(fake: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _check(self) -> bool:
            fake.requests.append((self.command, self.path))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, {"message": "Bad credentials"})
                return False
            if fake.status is not None:
                self._send(fake.status, {"message": "Resource not accessible by integration"})
                return False
            return True

        def do_GET(self) -> None:
            if not self._check():
                return
            url = urlparse(self.path)
            parts = url.path.strip("/").split("/")  # repos/acme/pipelines/issues/7/comments
            number = int(parts[4])
            query = parse_qs(url.query)
            per_page, page = int(query.get("per_page", ["30"])[0]), int(query.get("page", ["1"])[0])
            items = fake.comments.get(number, [])
            chunk = items[(page - 1) * per_page: page * per_page]
            headers = {}
            if page * per_page < len(items):
                headers["Link"] = f'<{fake.url}{url.path}?per_page={per_page}&page={page + 1}>; rel="next"'
            self._send(200, chunk, headers)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            return dict(json.loads(self.rfile.read(length) or b"{}"))

        def do_POST(self) -> None:
            if not self._check():
                return
            number = int(self.path.strip("/").split("/")[4])
            fake.next_id += 1
            comment = {"id": fake.next_id, "body": self._body()["body"],
                       "html_url": f"https://github.example/{REPO}/pull/{number}#issuecomment-{fake.next_id}"}
            fake.comments.setdefault(number, []).append(comment)
            self._send(201, comment)

        def do_PATCH(self) -> None:
            if not self._check():
                return
            comment_id = int(self.path.rstrip("/").rsplit("/", 1)[1])
            for comments in fake.comments.values():
                for comment in comments:
                    if comment["id"] == comment_id:
                        comment["body"] = self._body()["body"]
                        self._send(200, comment)
                        return
            self._send(404, {"message": "Not Found"})

    return Handler


@pytest.fixture
def github_api() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


def _plan(repo: Path, tmp_path: Path, fake: FakeGitHub, *, token: str | None = TOKEN,
          extra: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess[str], str]:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7}}), encoding="utf-8")
    summary = tmp_path / "summary.md"
    summary.write_text("", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "KFP_CI_"))}
    env.update(GITHUB_ACTIONS="true", GITHUB_API_URL=fake.url, GITHUB_REPOSITORY=REPO,
               GITHUB_EVENT_PATH=str(event), GITHUB_STEP_SUMMARY=str(summary), PYTHONPATH=str(ROOT / "ci"))
    if token is not None:
        env["GITHUB_TOKEN"] = token
    done = subprocess.run([sys.executable, "-m", "kfp_ci.cli", "plan", "--base", "main", "--comment", *extra],
                          cwd=repo, env=env, capture_output=True, text=True, check=False, timeout=60)
    return done, summary.read_text(encoding="utf-8")


def _push(repo: Path, source: str, *, params: str | None = None) -> None:
    (repo / "pipelines" / "hello.py").write_text(source, encoding="utf-8")
    compile_pipeline(repo / "pipelines" / "hello.py", repo / "compiled" / "hello-ci.yaml")
    if params is not None:
        text = (repo / "pyproject.toml").read_text(encoding="utf-8").replace("parameters = { rows = 3 }", params)
        (repo / "pyproject.toml").write_text(text, encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "change")


def test_first_push_creates_the_comment_and_the_next_push_edits_the_same_one(
        consumer: Path, tmp_path: Path, github_api: FakeGitHub) -> None:
    """One sticky comment: POST on the first push, PATCH of that comment afterwards; other comments untouched."""
    github_api.comments[7] = [{"id": i, "body": f"unrelated {i}", "html_url": ""} for i in range(1, 121)]
    git(consumer, "checkout", "-q", "-b", "feature")
    _push(consumer, CHANGED_SOURCE)
    done, summary = _plan(consumer, tmp_path, github_api)
    assert done.returncode == 0, done.stdout + done.stderr
    posted = [c for c in github_api.comments[7] if "<!-- kfp-ci-plan -->" in c["body"]]
    assert len(posted) == 1 and len(github_api.comments[7]) == 121
    body = posted[0]["body"]
    assert "| base `main` | **new version** |" in body
    assert "| + | step | `publish` | added |" in body
    assert "| ~ | step | `report` | image python:3.11-slim -> python:3.12-slim" in body
    assert '["publish (added)"]' in body and "classDef changed" in body
    assert body.strip() == summary.strip()  # the same plan in the job summary
    assert ("POST", f"/repos/{REPO}/issues/7/comments") in github_api.requests
    assert "plan comment created" in done.stderr

    # Next push: only a run parameter of [tool.kfp-ci] changes; the same comment is edited.
    _push(consumer, CHANGED_SOURCE, params="parameters = { rows = 5 }")
    github_api.requests.clear()
    done, _summary = _plan(consumer, tmp_path, github_api)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [m for m, _ in github_api.requests].count("POST") == 0
    assert ("PATCH", f"/repos/{REPO}/issues/comments/{posted[0]['id']}") in github_api.requests
    edited = [c for c in github_api.comments[7] if "<!-- kfp-ci-plan -->" in c["body"]]
    assert len(edited) == 1 and edited[0]["id"] == posted[0]["id"]
    assert "run parameter `rows`: 3 -> 5" in edited[0]["body"]
    assert TOKEN not in done.stdout + done.stderr


def test_no_token_writes_the_summary_only_with_a_notice(consumer: Path, tmp_path: Path,
                                                        github_api: FakeGitHub) -> None:
    git(consumer, "checkout", "-q", "-b", "feature")
    (consumer / "README.md").write_text("docs\n", encoding="utf-8")
    git(consumer, "add", "-A")
    git(consumer, "commit", "-q", "-m", "docs")
    done, summary = _plan(consumer, tmp_path, github_api, token=None)
    assert done.returncode == 0, done.stdout + done.stderr
    assert github_api.requests == []
    assert "::notice title=kfp-ci plan::plan not posted on the pull request: no GITHUB_TOKEN" in done.stdout
    assert "| base `main` | **unchanged** |" in summary
    assert "No change: a merge uploads no version and starts no run." in summary


def test_a_read_only_token_falls_back_to_the_summary(consumer: Path, tmp_path: Path,
                                                     github_api: FakeGitHub) -> None:
    """A fork's pull request: GitHub answers 403; the plan is still in the summary, the step still passes."""
    github_api.status = 403
    done, summary = _plan(consumer, tmp_path, github_api)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "GitHub answered 403" in done.stdout and "read-only" in done.stdout
    assert "kfp-ci plan" in summary and TOKEN not in done.stdout + done.stderr + summary


def test_plan_against_the_host_says_unchanged_when_the_latest_version_holds_the_package(
        consumer: Path, tmp_path: Path, github_api: FakeGitHub) -> None:
    """--against-host: the latest version's recorded content hash decides new version vs unchanged."""
    from kfp_ci.local import LocalServer, ServerOptions

    options = ServerOptions(data_dir=tmp_path / "kfp", execute=False)
    with LocalServer(options, host="127.0.0.1", port=0) as srv:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "KFP_CI_"))}
        env["PYTHONPATH"] = str(ROOT / "ci")
        deploy = subprocess.run([sys.executable, "-m", "kfp_ci.cli", "deploy", "--host", srv.url, "--auth", "none"],
                                cwd=consumer, env=env, capture_output=True, text=True, check=False, timeout=60)
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr
        done, summary = _plan(consumer, tmp_path, github_api, token=None,
                              extra=("--against-host", "--host", srv.url, "--auth", "none"))
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"| KFP `{srv.url}` | **unchanged** | latest version" in summary
        _push(consumer, CHANGED_SOURCE)
        done, summary = _plan(consumer, tmp_path, github_api, token=None,
                              extra=("--against-host", "--host", srv.url, "--auth", "none"))
        assert f"| KFP `{srv.url}` | **new version** |" in summary
