"""The CI-shaped client sequence, kfp.Client vs kfp_ci.client.Client, against one local server in one run.

Each side runs in a fresh Python process, as a CI step does, and does the same job:
healthz, find the pipeline by name, upload a new version, get-or-create the experiment, create a run, get the run.

- kfp: ``import kfp``; ``kfp.Client(host)`` (its constructor calls healthz); ``get_kfp_healthz``;
  ``get_pipeline_id``; ``upload_pipeline_version``; ``create_experiment``; ``run_pipeline``; ``get_run``.
- kfp-ci: ``import kfp_ci.client``; ``Client(host)``; ``client.server`` (one healthz); the same calls.

Reported: median wall time of each process (alternating, N rounds, import and construction included), the ratio,
the HTTP requests each side sends (counted by a loopback counting proxy in front of the server, one extra round),
and the median of ``python -c 'import kfp_ci.client'`` (and of ``import kfp`` for scale).

    python benchmarks/client_bench.py [--rounds 7]
"""

import argparse
import http.client
import http.server
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import _installed

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = "bench-pipeline"

KFP_SCRIPT = textwrap.dedent(
    """
    import sys, warnings
    warnings.simplefilter("ignore")
    host, package, version = sys.argv[1:4]
    import kfp
    client = kfp.Client(host=host)
    client.get_kfp_healthz()
    pid = client.get_pipeline_id(sys.argv[4])
    v = client.upload_pipeline_version(package, version, pipeline_id=pid)
    e = client.create_experiment("bench")
    r = client.run_pipeline(e.experiment_id, "bench-" + version, pipeline_id=pid, version_id=v.pipeline_version_id)
    assert client.get_run(r.run_id).run_id == r.run_id
    """
)

KFP_CI_SCRIPT = textwrap.dedent(
    """
    import sys
    host, package, version = sys.argv[1:4]
    from kfp_ci.client import Client
    client = Client(host)
    client.server
    pid = client.get_pipeline_id(sys.argv[4])
    v = client.upload_pipeline_version(package, version, pipeline_id=pid)
    e = client.create_experiment("bench")
    r = client.run_pipeline(e.experiment_id, "bench-" + version, pipeline_id=pid, version_id=v.pipeline_version_id)
    assert client.get_run(r.run_id).run_id == r.run_id
    """
)


class CountingProxy:
    """A loopback HTTP/1.1 reverse proxy that forwards to ``target`` and counts requests."""

    def __init__(self, target: str) -> None:
        host, _, port = target.removeprefix("http://").partition(":")
        self.count = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _forward(self) -> None:
                proxy.count += 1
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                upstream = http.client.HTTPConnection(host, int(port), timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("connection", "transfer-encoding", "content-length", "date", "server"):
                        self.send_header(key, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            do_GET = do_POST = do_DELETE = do_PATCH = _forward

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "CountingProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def run_script(script: str, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", script, *args], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def import_time(module: str, rounds: int) -> tuple[float, float]:
    """(median, min) wall time of ``python -c 'import module'``; the min shows the unloaded machine."""
    times = [run_script(f"import {module}") for _ in range(rounds)]
    return statistics.median(times), min(times)


def compile_package(out: Path) -> Path:
    from kfp import compiler, dsl

    @dsl.component(base_image="python:3.11")
    def add(a: float, b: float) -> float:
        return a + b

    @dsl.pipeline(name=PIPELINE)
    def pipeline(a: float = 1.0, b: float = 2.0) -> None:
        add(a=a, b=b)

    path = out / f"{PIPELINE}.yaml"
    compiler.Compiler().compile(pipeline, str(path))
    return path


def main() -> int:
    _installed.prepare()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--compat", default="2.17", choices=("2.17", "2.5"),
                        help="server generation (kfp.Client 2.x needs the v2beta1 API)")
    args = parser.parse_args()

    from kfp_ci.client import Client
    from kfp_ci.local import LocalServer, ServerOptions

    with tempfile.TemporaryDirectory() as tmp:
        package = compile_package(Path(tmp))
        options = ServerOptions(data_dir=Path(tmp) / "data", compat=args.compat, execute=False)
        with LocalServer(options, host="127.0.0.1", port=0) as srv:
            with Client(srv.url) as setup:
                setup.upload_pipeline(package, PIPELINE)
            sides = {"kfp.Client": KFP_SCRIPT, "kfp_ci.client": KFP_CI_SCRIPT}
            run_script(KFP_SCRIPT, srv.url, str(package), "warmup-kfp", PIPELINE)  # warm the OS file cache
            run_script(KFP_CI_SCRIPT, srv.url, str(package), "warmup-kfp-ci", PIPELINE)
            times: dict[str, list[float]] = {name: [] for name in sides}
            for i in range(args.rounds):
                for name, script in sides.items():
                    version = f"{'a' if name == 'kfp.Client' else 'b'}-{i}"
                    times[name].append(run_script(script, srv.url, str(package), version, PIPELINE))
            requests: dict[str, int] = {}
            with CountingProxy(srv.url) as proxy:
                for name, script in sides.items():
                    before = proxy.count
                    run_script(script, proxy.url, str(package), f"{'a' if name == 'kfp.Client' else 'b'}-count",
                               PIPELINE)
                    requests[name] = proxy.count - before
    kfp_s = statistics.median(times["kfp.Client"])
    ours = statistics.median(times["kfp_ci.client"])
    imp_ours = import_time("kfp_ci.client", args.rounds)
    imp_kfp = import_time("kfp", max(3, args.rounds // 2))
    bare = statistics.median(run_script("pass") for _ in range(args.rounds))
    print(f"client_bench: CI sequence against kfp-ci serve --compat {args.compat}, {args.rounds} rounds, medians")
    print(f"{'':28}{'kfp.Client':>12}{'kfp_ci':>12}")
    print(f"{'wall time per process (s)':28}{kfp_s:12.3f}{ours:12.3f}")
    print(f"{'HTTP requests':28}{requests['kfp.Client']:12d}{requests['kfp_ci.client']:12d}")
    print(f"{'import, median (s)':28}{imp_kfp[0]:12.3f}{imp_ours[0]:12.3f}   (python -c pass: {bare:.3f})")
    print(f"{'import, min (s)':28}{imp_kfp[1]:12.3f}{imp_ours[1]:12.3f}")
    print(f"{'wall time, min (s)':28}{min(times['kfp.Client']):12.3f}{min(times['kfp_ci.client']):12.3f}")
    print(f"speed-up: {kfp_s / ours:.1f}x   (goal >= 3x; import kfp_ci.client goal <= 0.2 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
