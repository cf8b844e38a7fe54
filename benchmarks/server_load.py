"""Load on the embedded server: N concurrent clients x M mixed calls against one ``kfp-ci serve --no-execute``.

The server runs in its own process (as users run it); the clients are asyncio tasks over httpx, each with its
own connection pool. The mix per client cycles through: list pipelines, get a pipeline, upload a version,
create a run (``--no-execute``), get a run, list runs (newest first, and every other time a run found by name
the way ``kfp-ci`` finds one). Prints the error count, requests/s, the CPU time per request of the server process
and of the clients (from ``/proc``: on a shared machine the steadiest figure), and p50/p95/max latency per call kind
and overall; exits 1 on any error.

``--runs N`` / ``--versions N`` first fill the store with N runs (in the Default experiment, in every state, with
tasks and histories) and N versions of the pipeline the load uses, written in bulk straight into the server's
SQLite store before it starts, so the same load can be compared on an empty and a large store.

    python benchmarks/server_load.py [--clients 50] [--calls 20] [--runs 100000] [--versions 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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
KINDS = ("list", "get", "upload", "run", "get-run", "list-runs")


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
        run_id = last_name = ""
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
                    last_name = f"c{n}-r{i}"
                elif kind == "list-runs":
                    params = {"page_size": "20", "sort_by": "created_at desc"}
                    if i % 2 and run_id:
                        params["filter"] = json.dumps({"predicates": [
                            {"operation": "EQUALS", "key": "display_name", "string_value": last_name}]})
                    r = await http.get(f"{V2}/runs", params=params)
                else:
                    r = await http.get(f"{V2}/runs/{run_id}")
                if r.status_code != 200:
                    errors.append(f"{kind}: {r.status_code} {r.text[:120]}")
            except httpx.HTTPError as exc:
                errors.append(f"{kind}: {type(exc).__name__}: {exc}")
                continue
            samples[kind].append((time.perf_counter() - start) * 1000)


def seed(data_dir: Path, runs: int, versions: int) -> float:
    """Fill the store with ``versions`` versions of the pipeline ``load`` and ``runs`` runs of them; seconds taken."""
    import random

    from kfp_ci.local._compat import Compat
    from kfp_ci.local._executor import Executor
    from kfp_ci.local._model import Model
    from kfp_ci.local._packages import read_package, spec_parameters
    from kfp_ci.local._store import Store, new_id

    started = time.perf_counter()
    rng = random.Random(16)
    store = Store(data_dir)
    try:
        model = Model(store, Executor(store, execute=False, run_delay=0), Compat("2.17"), multi_user=False,
                      profiles={})
        content, spec = read_package(PACKAGE.encode(), "load.yaml")
        pipeline = model.create_pipeline(name="load", display_name="load", description="", ns="")
        digest = store.put_package(content)
        params = list(spec_parameters(spec))
        t0 = time.time() - 30 * 86400  # the last 30 days
        version_ids = []
        records = []
        for i in range(versions):
            vid = new_id()
            version_ids.append(vid)
            records.append({"id": vid, "pipeline_id": pipeline["id"], "name": f"seed-v{i}",
                            "display_name": f"seed-v{i}", "description": "", "_parent": pipeline["id"], "_ns": "",
                            "created_at": t0 + i * (86400 * 29 / max(versions, 1)), "package": digest,
                            "code_source_url": "", "package_url": "", "tags": {}, "parameters": params})
        store.insert_many("version", records)
        experiment = model.default_experiment("")
        batch: list[dict[str, object]] = []
        for i in range(runs):
            created = t0 + i * (86400 * 29 / max(runs, 1))
            state = rng.choice(["SUCCEEDED"] * 7 + ["FAILED", "CANCELED"])  # a restarted server has no running one
            end = None if state == "RUNNING" else created + 40
            history = [{"update_time": created, "state": "PENDING"}, {"update_time": created + 1, "state": "RUNNING"}]
            if end is not None:
                history.append({"update_time": end, "state": state})
            tasks = [{"name": "add", "state": state, "start": created + 2, "end": end, "error": ""}]
            batch.append({
                "id": new_id(), "name": f"seed-r{i}", "description": "", "experiment_id": experiment["id"],
                "_ns": "", "_parent": "", "pipeline_id": pipeline["id"], "version_id": rng.choice(version_ids),
                "inline": False, "package": digest, "params": {"a": i}, "pipeline_root": "", "service_account": "",
                "recurring_run_id": "", "created_at": created, "scheduled_at": created, "finished_at": end,
                "state": state, "error": "task add failed" if state == "FAILED" else "", "state_history": history,
                "tasks": tasks, "storage_state": "AVAILABLE", "metrics": []})
            if len(batch) == 5000:
                store.insert_many("run", batch)
                batch = []
        store.insert_many("run", batch)
    finally:
        store.close()
    return time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main_async(url: str, clients: int, calls: int, pid: int = 0) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        r = await http.get(f"{V2}/pipelines/names/load")
        if r.status_code == 404:
            r = await http.post(f"{V2}/pipelines/upload", params={"name": "load"},
                                files={"uploadfile": ("load.yaml", PACKAGE.encode())})
        r.raise_for_status()
        pipeline_id = r.json()["pipeline_id"]
    samples: dict[str, list[float]] = {k: [] for k in KINDS}
    errors: list[str] = []
    start, cpu, own = time.perf_counter(), cpu_seconds(pid), time.process_time()
    await asyncio.gather(*(client(n, url, calls, pipeline_id, samples, errors) for n in range(clients)))
    wall = time.perf_counter() - start
    cpu, own = cpu_seconds(pid) - cpu, time.process_time() - own
    everything = [v for vs in samples.values() for v in vs]
    print(f"server_load: {clients} clients x {calls} calls = {clients * calls} requests in {wall:.2f} s "
          f"({clients * calls / wall:.0f} req/s), errors: {len(errors)}; "
          f"CPU per request: server {cpu * 1000 / (clients * calls):.2f} ms, "
          f"clients {own * 1000 / (clients * calls):.2f} ms")
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
    parser.add_argument("--runs", type=int, default=0, help="runs to put in the store first")
    parser.add_argument("--versions", type=int, default=0, help="versions of the loaded pipeline to put in first")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.runs or args.versions:
            took = seed(Path(tmp), args.runs, args.versions)
            print(f"server_load: store seeded with {args.runs} runs and {args.versions} versions in {took:.1f} s")
        proc, url = start_server(Path(tmp))
        try:
            return asyncio.run(main_async(url, args.clients, args.calls, proc.pid))
        finally:
            proc.terminate()
            proc.wait(timeout=20)


if __name__ == "__main__":
    sys.exit(main())
