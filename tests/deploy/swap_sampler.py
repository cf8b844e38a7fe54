"""A sampler of the recurring runs a server shows while kfp-ci swaps schedules (the observable state between steps).

``python -m tests.deploy.swap_sampler [SWAPS]`` (from the repository root, with the package importable) starts an
embedded server, deploys a pipeline with a schedule, swaps the schedule SWAPS times while another thread lists the
recurring runs every 20 ms, and prints how many samples saw 0, 1 or 2 enabled recurring runs; then times the
overlap of each swap (new one enabled -> old one disabled).
"""

from __future__ import annotations

import collections
import statistics
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


def overlap_ms(url: str, package: Path, swaps: int) -> list[float]:
    """Milliseconds from the new run's enable answered to the old run's disable answered, per swap (sorted)."""
    from kfp_ci.client import Client
    from kfp_ci.deploy import _api, deploy

    marks: dict[str, float] = {}
    overlaps: list[float] = []
    enable, disable = _api.RecurringRuns.enable, _api.RecurringRuns.disable

    def timed_enable(self: _api.RecurringRuns, rid: str) -> None:
        enable(self, rid)
        marks["enabled"] = time.perf_counter()

    def timed_disable(self: _api.RecurringRuns, rid: str) -> None:
        disable(self, rid)
        if "enabled" in marks:
            overlaps.append((time.perf_counter() - marks.pop("enabled")) * 1000)

    _api.RecurringRuns.enable, _api.RecurringRuns.disable = timed_enable, timed_disable  # type: ignore[method-assign]
    try:
        client = Client(url)
        for i in range(swaps + 1):
            deploy(client, package, version_name="v1", every=f"{1000 + i}h")
    finally:
        _api.RecurringRuns.enable, _api.RecurringRuns.disable = enable, disable  # type: ignore[method-assign]
    return sorted(overlaps)


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
            times = overlap_ms(server.url, package, swaps)
            print(f"overlap of two enabled runs per swap, x{len(times)}: median {statistics.median(times):.1f} ms, "
                  f"p90 {times[int(len(times) * 0.9)]:.1f} ms, max {times[-1]:.1f} ms")
        finally:
            server.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
