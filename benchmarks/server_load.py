"""Load on the embedded server: N concurrent clients x M mixed calls against one ``kfp-ci serve --no-execute``.

The server runs in its own process (as users run it); the clients are asyncio tasks over httpx, each with its
own connection pool. The mix per client cycles through: list pipelines, get a pipeline, upload a version,
create a run (``--no-execute``), get a run. Prints the error count and p50/p95/max latency per call kind and
overall; exits 1 on any error.

    python benchmarks/server_load.py [--clients 50] [--calls 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import _installed
import httpx

PACKAGE = """\
components:
  comp-add:
    executorLabel: exec-add
    inputDefinitions:
      parameters:
        a: {parameterType: NUMBER_DOUBLE}
deploymentSpec:
  executors:
    exec-add:
      container: {image: python:3.11, command: [python, -c, pass]}
pipelineInfo: {name: load}
root:
  dag:
    tasks:
      add:
        componentRef: {name: comp-add}
        taskInfo: {name: add}
schemaVersion: 2.1.0
sdkVersion: kfp-2.17.0
"""
V2 = "/apis/v2beta1"
KINDS = ("list", "get", "upload", "run", "get-run")


def start_server(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "kfp_ci", "serve", "--port", "0", "--data-dir", str(data_dir),
                             "--no-execute", "--run-delay", "0"], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    url = next(word for word in line.split() if word.startswith("http://"))
    # drain the access log so the pipe never fills
    threading.Thread(target=lambda: [None for _ in proc.stderr or []], daemon=True).start()
    return proc, url


async def client(n: int, url: str, calls: int, pipeline_id: str, samples: dict[str, list[float]],
                 errors: list[str]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        run_id = ""
        for i in range(calls):
            kind = KINDS[(i + n) % len(KINDS)]  # clients start at different points of the mix
            if kind == "get-run" and not run_id:
                kind = "run"
            start = time.perf_counter()
            try:
                if kind == "list":
                    r = await http.get(f"{V2}/pipelines", params={"page_size": "20"})
                elif kind == "get":
                    r = await http.get(f"{V2}/pipelines/{pipeline_id}")
                elif kind == "upload":
                    r = await http.post(f"{V2}/pipelines/upload_version",
                                        params={"pipelineid": pipeline_id, "name": f"c{n}-v{i}"},
                                        files={"uploadfile": ("load.yaml", PACKAGE.encode())})
                elif kind == "run":
                    r = await http.post(f"{V2}/runs", json={
                        "display_name": f"c{n}-r{i}", "pipeline_version_reference": {"pipeline_id": pipeline_id},
                        "runtime_config": {"parameters": {"a": i}}})
                    run_id = r.json().get("run_id", "") if r.status_code == 200 else ""
                else:
                    r = await http.get(f"{V2}/runs/{run_id}")
                if r.status_code != 200:
                    errors.append(f"{kind}: {r.status_code} {r.text[:120]}")
            except httpx.HTTPError as exc:
                errors.append(f"{kind}: {type(exc).__name__}: {exc}")
                continue
            samples[kind].append((time.perf_counter() - start) * 1000)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main_async(url: str, clients: int, calls: int) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        r = await http.post(f"{V2}/pipelines/upload", params={"name": "load"},
                            files={"uploadfile": ("load.yaml", PACKAGE.encode())})
        r.raise_for_status()
        pipeline_id = r.json()["pipeline_id"]
    samples: dict[str, list[float]] = {k: [] for k in KINDS}
    errors: list[str] = []
    start = time.perf_counter()
    await asyncio.gather(*(client(n, url, calls, pipeline_id, samples, errors) for n in range(clients)))
    wall = time.perf_counter() - start
    everything = [v for vs in samples.values() for v in vs]
    print(f"server_load: {clients} clients x {calls} calls = {clients * calls} requests in {wall:.2f} s "
          f"({clients * calls / wall:.0f} req/s), errors: {len(errors)}")
    print(f"{'call':<10}{'n':>6}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for kind in (*KINDS, "all"):
        values = everything if kind == "all" else samples[kind]
        if values:
            print(f"{kind:<10}{len(values):>6}{statistics.median(values):>10.1f}{pct(values, 0.95):>10.1f}"
                  f"{max(values):>10.1f}")
    for line in errors[:10]:
        print("error:", line)
    return 1 if errors else 0


def main() -> int:
    _installed.prepare()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(Path(tmp))
        try:
            return asyncio.run(main_async(url, args.clients, args.calls))
        finally:
            proc.terminate()
            proc.wait(timeout=20)


if __name__ == "__main__":
    sys.exit(main())
