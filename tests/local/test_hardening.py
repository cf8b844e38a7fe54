"""Hostile input against a real ``kfp-ci serve`` process (issue #15, server half): resource bombs and malformed
bodies are answered 4xx within 2 s with the server's RSS growing < 100 MB; SIGKILL of the server stops its run
workers; ML Metadata is scoped to the caller's namespaces; the faults endpoint needs the API's authentication;
``--host 0.0.0.0 --auth none`` warns."""

from __future__ import annotations

import gzip
import io
import os
import re
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from .test_api import V2, upload
from .test_login_emulation import USER, Browser, browser, browsers, login_error, oauth2_login, password_form

__all__ = ["browsers"]  # the fixture, imported for the Dex test

REPORT: list[str] = []


class Serve:
    """``python -m kfp_ci serve`` in a subprocess on a free loopback port; stderr drained into ``lines``."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self.proc = subprocess.Popen([sys.executable, "-m", "kfp_ci", "serve", "--port", "0", "--data-dir",
                                      str(data_dir), *args], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     env=env)
        self.lines: list[str] = []
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 30
        self.url = ""
        while not self.url:
            line = self.proc.stderr.readline().decode()
            assert line or time.monotonic() < deadline, "the server did not start"
            self.lines.append(line)
            found = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
            if found:
                self.url = found.group(1)
        threading.Thread(target=self._drain, daemon=True).start()
        for _ in range(100):
            try:
                if httpx.get(f"{self.url}{V2}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.decode(errors="replace"))

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(status.split("VmRSS:")[1].split()[0]) / 1024

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    srv = Serve(tmp_path_factory.mktemp("served"), "--no-execute")
    yield srv
    srv.stop()
    assert not any("Traceback" in line for line in srv.lines), "".join(srv.lines)[-3000:]
    print("\n" + "\n".join(REPORT))


def _laughs() -> bytes:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    return "\n".join(lines).encode()


def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        with zf.open("pipeline.yaml", "w", force_zip64=True) as member:
            chunk = b"\0" * (1 << 20)
            for _ in range(1024):
                member.write(chunk)
    return buffer.getvalue()


def _tar_bomb() -> bytes:
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9) as gz:
        info = tarfile.TarInfo("pipeline.yaml")
        info.size = 1 << 30
        gz.write(info.tobuf(format=tarfile.GNU_FORMAT))
        chunk = b"\0" * (1 << 20)
        for _ in range(1024):
            gz.write(chunk)
    return raw.getvalue()


def _post_upload(url: str, content: bytes, filename: str) -> httpx.Response:
    return httpx.post(f"{url}{V2}/pipelines/upload", params={"name": filename},
                      files={"uploadfile": (filename, content, "application/octet-stream")}, timeout=30)


def _measured(srv: Serve, what: str, call: Callable[[], httpx.Response | tuple[int, str]]) -> tuple[int, str]:
    before = srv.rss_mb()
    start = time.perf_counter()
    answer = call()
    seconds = time.perf_counter() - start
    after = srv.rss_mb()
    status, text = (answer.status_code, answer.text) if isinstance(answer, httpx.Response) else answer
    REPORT.append(f"{what}: {status} in {seconds:.2f}s, server RSS {before:.0f} -> {after:.0f} MB "
                  f"({after - before:+.0f} MB)")
    assert 400 <= status < 500, (what, status, text[:300])
    assert seconds < 2.0, (what, seconds)
    assert after - before < 100, (what, before, after)
    return status, text


def _raw_request(url: str, head: str, body: bytes) -> tuple[int, str]:
    """Send ``head`` and the start of a body over a socket, then read the answer (without sending the rest)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode() + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    status_line = data.split(b"\r\n", 1)[0].decode()
    return int(status_line.split()[1]), data.decode(errors="replace")


# ----------------------------------------------------------------------------------------------- bombs
def test_yaml_alias_bomb_is_refused(served: Serve) -> None:
    _, text = _measured(served, "YAML alias bomb (10^10 nodes, 1 KB)",
                        lambda: _post_upload(served.url, _laughs(), "laughs.yaml"))
    assert "aliases expand to more than" in text


def test_recursive_yaml_is_refused(served: Serve) -> None:
    _, text = _measured(served, "recursive YAML alias", lambda: _post_upload(served.url, b"a: &a [*a]\n", "r.yaml"))
    assert "recursive" in text


def test_huge_yaml_document_is_refused(served: Serve) -> None:
    lines = b"root:\n" + b"- 1\n" * (7 << 20)  # 28 MiB, 7 million list items
    _, text = _measured(served, "YAML document of 7,340,032 items (28 MiB)",
                        lambda: _post_upload(served.url, lines, "big.yaml"))
    assert "lines and items" in text


def test_zip_bomb_is_refused(served: Serve) -> None:
    bomb = _zip_bomb()
    _, text = _measured(served, f"zip inflating to 1 GiB ({len(bomb) >> 10} KiB)",
                        lambda: _post_upload(served.url, bomb, "bomb.zip"))
    assert "inflates to more than 32 MiB" in text


def test_tar_gz_bomb_is_refused(served: Serve) -> None:
    bomb = _tar_bomb()
    _, text = _measured(served, f"tar.gz inflating to 1 GiB ({len(bomb) >> 10} KiB)",
                        lambda: _post_upload(served.url, bomb, "bomb.tar.gz"))
    assert "inflates to more than 32 MiB" in text


def test_a_declared_200_mb_body_is_refused_before_it_is_read(served: Serve) -> None:
    head = (f"POST {V2}/experiments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {200 << 20}\r\n\r\n")
    status, _ = _measured(served, "JSON body declaring 200 MB", lambda: _raw_request(served.url, head, b"{" * 1024))
    assert status == 413


def test_a_chunked_200_mb_body_is_cut_at_the_limit(served: Serve) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"display_name": "'
        for _ in range(200):
            yield b"x" * (1 << 20)
        yield b'"}'
    status, _ = _measured(served, "JSON body of 200 MB, chunked (no length)",
                          lambda: httpx.post(f"{served.url}{V2}/experiments", content=chunks(),
                                             headers={"content-type": "application/json"}, timeout=30))
    assert status == 413


def test_a_200_mb_multipart_upload_is_refused(served: Serve) -> None:
    head = (f"POST {V2}/pipelines/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {200 << 20}\r\n\r\n")
    status, _ = _measured(served, "multipart upload declaring 200 MB",
                          lambda: _raw_request(served.url, head, b"--b\r\n"))
    assert status == 413


# ------------------------------------------------------------------------------------------ malformed
@pytest.mark.parametrize(("what", "path", "kwargs"), [
    ("upload with a JSON body", "/pipelines/upload", {"json": {"name": "x"}}),
    ("upload_version with a form body", "/pipelines/upload_version?pipelineid=x", {"data": {"a": "b"}}),
    ("upload with no body", "/pipelines/upload", {}),
    ("broken multipart", "/pipelines/upload", {"content": b"--zz\r\nContent-Disposition: form-data; na",
                                               "headers": {"content-type": "multipart/form-data; boundary=zz"}}),
    ("multipart without a boundary", "/pipelines/upload", {"content": b"abc",
                                                           "headers": {"content-type": "multipart/form-data"}}),
    ("JSON nested 100,000 deep", "/experiments", {"content": b"[" * 100_000 + b"]" * 100_000}),
    ("JSON nested 500 deep", "/experiments", {"content": b'{"display_name": "e", "description": ' + b"[" * 500
                                              + b"]" * 500 + b"}"}),
    ("JSON of 15 million items (30 MiB)", "/experiments", {"content": b'{"display_name": "e", "description": ['
                                                           + b"1," * (15 << 20) + b"1]}"}),
    ("NaN in JSON", "/experiments", {"content": b'{"display_name": NaN}'}),
    ("Infinity in JSON", "/runs", {"content": b'{"display_name": "r", "runtime_config": {"parameters": '
                                   b'{"x": Infinity}}}'}),
    ("JSON that is not UTF-8", "/experiments", {"content": b'{"display_name": "\xff\xfe"}'}),
])
def test_malformed_bodies_answer_4xx(served: Serve, what: str, path: str, kwargs: dict[str, Any]) -> None:
    _measured(served, what, lambda: httpx.post(f"{served.url}{V2}{path}", timeout=30, **kwargs))


def test_non_ascii_dex_passwords(kfp_server: Callable[..., Any], browsers: list[Browser]) -> None:
    srv = kfp_server(auth="dex", execute=False, users={USER: "pässwört-€"})
    b = browser(browsers, srv)
    failed = oauth2_login(b, password="nicht-pässwört")
    assert failed.status_code == 401
    assert login_error(password_form(failed)[1]) == "Invalid Email Address and password."
    b2 = browser(browsers, srv)
    ok = oauth2_login(b2, password="pässwört-€")  # the form posts UTF-8
    assert ok.status_code == 303 and "/oauth2/callback?" in ok.headers["location"]


# ------------------------------------------------------------------------------------------- tenants
def test_ml_metadata_is_scoped_to_the_callers_namespaces(kfp_server: Callable[..., Any],
                                                         pipelines: dict[str, Path]) -> None:
    from kfp_ci.gate._mlmd import MlmdClient, mlmd_run_metrics

    srv = kfp_server(execute=False, multi_user=True, profiles={"a@x.org": ("team-a",), "b@x.org": ("team-b",)})
    alice, bob = {"kubeflow-userid": "a@x.org"}, {"kubeflow-userid": "b@x.org"}
    with pipelines["add-square"].open("rb") as fh:
        p = httpx.post(f"{srv.url}{V2}/pipelines/upload", params={"name": "p", "namespace": "team-a"},
                       files={"uploadfile": ("p.yaml", fh)}, headers=alice)
    e = httpx.post(f"{srv.url}{V2}/experiments", json={"display_name": "e", "namespace": "team-a"}, headers=alice)
    run = httpx.post(f"{srv.url}{V2}/runs", headers=alice, json={
        "display_name": "r", "experiment_id": e.json()["experiment_id"],
        "pipeline_version_reference": {"pipeline_id": p.json()["pipeline_id"]}})
    assert run.status_code == 200, run.text
    run_id = run.json()["run_id"]
    srv.store.set_run_artifacts(run_id, [{"run_id": run_id, "task": "train", "name": "metrics",
                                          "type": "system.Metrics", "uri": "file:///m", "metadata": {"r2": 0.9}}])
    with httpx.Client(headers=alice) as http:
        assert mlmd_run_metrics(MlmdClient(http, srv.url), run_id).lookup("r2") == 0.9
    from kfp_ci._protowire import parse_grpc_web
    from kfp_ci.errors import GateFailed

    for who in (bob, {}):
        with httpx.Client(headers=who) as http:
            with pytest.raises(GateFailed, match=r"no system\.PipelineRun context"):
                mlmd_run_metrics(MlmdClient(http, srv.url), run_id)
            # nor by guessing ids: GetArtifactsByID / GetExecutionsByID for ids 1..20 find nothing
            ids = b"".join(bytes([0x08, i]) for i in range(1, 21))
            for method in ("GetArtifactsByID", "GetExecutionsByID"):
                answer = http.post(f"{srv.url}/ml_metadata.MetadataStoreService/{method}",
                                   headers={"content-type": "application/grpc-web+proto"},
                                   content=b"\x00" + len(ids).to_bytes(4, "big") + ids)
                assert answer.status_code == 200 and parse_grpc_web(answer.content) == b"", (who, method)
    with httpx.Client(headers=alice) as http:  # the ids exist: alice still reads them
        ids = b"".join(bytes([0x08, i]) for i in range(1, 21))
        answer = http.post(f"{srv.url}/ml_metadata.MetadataStoreService/GetArtifactsByID",
                           headers={"content-type": "application/grpc-web+proto"},
                           content=b"\x00" + len(ids).to_bytes(4, "big") + ids)
        assert b"file:///m" in parse_grpc_web(answer.content)


def test_the_faults_endpoint_needs_the_apis_authentication(kfp_server: Callable[..., Any], tmp_path: Path) -> None:
    srv = kfp_server(execute=False, faults=True, auth="token", tokens={"tok-1": USER})
    spec = {"match": "/experiments", "count": 1, "status": 503}
    assert httpx.post(f"{srv.url}/_kfp_ci/faults", json=spec).status_code == 401
    assert httpx.delete(f"{srv.url}/_kfp_ci/faults").status_code == 401
    authorized = {"authorization": "Bearer tok-1"}
    assert httpx.post(f"{srv.url}/_kfp_ci/faults", json=spec, headers=authorized).status_code == 200
    assert httpx.get(f"{srv.url}{V2}/experiments", headers=authorized).status_code == 503
    multi = kfp_server(execute=False, faults=True, multi_user=True)
    assert httpx.post(f"{multi.url}/_kfp_ci/faults", json=spec).status_code == 401
    assert httpx.post(f"{multi.url}/_kfp_ci/faults", json=spec,
                      headers={"kubeflow-userid": USER}).status_code == 200


def test_serving_on_all_interfaces_without_auth_warns(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from kfp_ci.cli import main
    from kfp_ci.local._server import LocalServer

    def bind(self: LocalServer) -> None:  # no socket: the test stays on loopback
        self.port, self.url = 8888, f"http://{self.host}:8888"
    monkeypatch.setattr(LocalServer, "bind", bind)
    monkeypatch.setattr(LocalServer, "serve_forever", lambda self: None)
    runner = CliRunner()
    wide = runner.invoke(main, ["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path / "a")])
    assert wide.exit_code == 0, wide.output
    assert "anyone who can reach port 8888 can create runs that execute code on this machine" in wide.stderr
    assert wide.stderr.count("warning") == 1
    for args in (["--host", "127.0.0.1"], ["--host", "0.0.0.0", "--auth", "token"], ["--host", "::1"]):
        quiet = runner.invoke(main, ["serve", *args, "--data-dir", str(tmp_path / "b")])
        assert quiet.exit_code == 0 and "anyone" not in quiet.stderr, (args, quiet.output)


# -------------------------------------------------------------------------------------------- restart
def _group_alive(pgid: int) -> list[int]:
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


def _worker_pid(run_id: str) -> int | None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"kfp_ci.local._worker" in cmdline and any(run_id.encode() in part for part in cmdline):
                return int(entry.name)
    return None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_of_the_server_stops_its_workers_and_restart_leaves_no_task_running(
        tmp_path: Path, pipelines: dict[str, Path]) -> None:
    data = tmp_path / "data"
    srv = Serve(data)
    worker: int | None = None
    try:
        p = upload(srv.url, pipelines["slow"], name="slow").json()
        run = httpx.post(f"{srv.url}{V2}/runs", json={
            "display_name": "r", "pipeline_version_reference": {"pipeline_id": p["pipeline_id"]},
            "runtime_config": {"parameters": {"seconds": 120}}}).json()
        run_id = run["run_id"]
        deadline = time.monotonic() + 60
        tasks: list[dict[str, Any]] = []
        while not any(t.get("state") == "RUNNING" for t in tasks):
            assert time.monotonic() < deadline, "the task did not start"
            time.sleep(0.3)
            details = httpx.get(f"{srv.url}{V2}/runs/{run_id}").json()
            tasks = (details.get("run_details") or {}).get("task_details") or []
        worker = _worker_pid(run_id)
        assert worker is not None
        time.sleep(1.0)  # the task's own process is up
        group = _group_alive(worker)
        assert len(group) >= 2, group  # the worker and the task it runs
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()
        start = time.monotonic()
        while _group_alive(worker) and time.monotonic() - start < 5:
            time.sleep(0.05)
        gone_after = time.monotonic() - start
        assert _group_alive(worker) == [], "workers went on after the server was killed"
        REPORT.append(f"SIGKILL of the server: its run's process group ({len(group)} processes) gone in "
                      f"{gone_after:.2f}s")
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
        if worker is not None and _group_alive(worker):  # never leave them behind, even when the test fails
            os.killpg(worker, signal.SIGKILL)
    again = Serve(data, "--no-execute")
    try:
        details = httpx.get(f"{again.url}{V2}/runs/{run_id}").json()
        assert details["state"] == "FAILED"
        states = [t.get("state") for t in details["run_details"]["task_details"]]
        assert states and "RUNNING" not in states and "PENDING" not in states, states
    finally:
        again.stop()
    print("\n" + "\n".join(REPORT[-1:]))
