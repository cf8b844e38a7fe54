"""A sampler of the recurring runs a server shows while kfp-ci swaps schedules (the observable state between steps).

``python -m tests.deploy.swap_sampler [SWAPS]`` (from the repository root, with the package importable) starts an
embedded server, deploys a pipeline with a schedule, swaps the schedule SWAPS times while another thread lists the
recurring runs every 20 ms, and prints how many samples saw 0, 1 or 2 enabled recurring runs.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from pathlib import Path

import httpx


def enabled_count(http: httpx.Client, url: str) -> int:
    body = http.get(f"{url}/apis/v2beta1/recurringruns", params={"page_size": 200}).json()
    return sum(1 for r in body.get("recurringRuns") or body.get("recurring_runs") or [] if r.get("status") == "ENABLED")


def measure(url: str, package: Path, swaps: int, *, interval: float = 0.02,
            concurrent: int = 1) -> collections.Counter[int]:
    """Swap the schedule of ``package`` ``swaps`` times (``concurrent`` deploys at once) while sampling; the counts."""
    from kfp_ci.client import Client
    from kfp_ci.deploy import deploy

    deploy(Client(url), package, version_name="v1", every="1h")
    counts: collections.Counter[int] = collections.Counter()
    stop = threading.Event()

    def sample() -> None:
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                counts[enabled_count(http, url)] += 1
                time.sleep(interval)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        for i in range(swaps):
            hours = [f"{2 + i * concurrent + j}h" for j in range(concurrent)]
            workers = [threading.Thread(target=deploy, args=(Client(url), package),
                                        kwargs={"version_name": "v1", "every": every}) for every in hours]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
    finally:
        time.sleep(interval * 2)
        stop.set()
        sampler.join()
    return counts


def main() -> None:  # pragma: no cover - a measuring tool
    import tempfile

    from kfp import compiler

    from kfp_ci.local import LocalServer, ServerOptions
    from tests.deploy import pipelines_src

    swaps = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    with tempfile.TemporaryDirectory() as tmp:
        package = Path(tmp) / "p.yaml"
        compiler.Compiler().compile(pipelines_src.add_square, str(package))
        server = LocalServer(ServerOptions(data_dir=Path(tmp) / "data", execute=False), host="127.0.0.1", port=0)
        server.start()
        try:
            for concurrent in (1, 2):
                counts = measure(server.url, package, swaps, concurrent=concurrent)
                total = sum(counts.values())
                print(f"{'sequential' if concurrent == 1 else 'two concurrent'} swaps x{swaps}: {total} samples; "
                      + ", ".join(f"{n} enabled: {counts[n]}" for n in sorted(counts)))
        finally:
            server.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
