"""Compile speed, side by side with the kfp SDK's own CLI, in one run.

Generates 24 small pipelines in 12 files in a temporary directory, then times:

* ``kfp dsl compile --py F --function FN --output OUT`` once per pipeline, sequentially (what a CI job does
  without kfp-ci);
* ``kfp-ci compile DIR`` cold (no cache) and warm (nothing changed);
* ``kfp-ci --help`` against ``kfp --help``.

Prints a Markdown table with medians and ratios, and the load average (the machine may be shared).
Usage: ``python benchmarks/compile_bench.py [--repeat N] [--kfp-runs N]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _installed

BIN = Path(sys.executable).parent
KFP = [str(BIN / "kfp")]
KFP_CI = [str(BIN / "kfp-ci")] if (BIN / "kfp-ci").exists() else [sys.executable, "-m", "kfp_ci"]

MODULE = '''from kfp import dsl


@dsl.component(base_image="python:3.11")
def prepare_{n}(rows: int) -> int:
    return rows * {n}


@dsl.component(base_image="python:3.11")
def score_{n}(value: int, factor: float) -> float:
    return value * factor


@dsl.pipeline(name="bench-{n}-a")
def pipeline_{n}_a(rows: int = {n}, factor: float = 0.5) -> None:
    prepared = prepare_{n}(rows=rows)
    score_{n}(value=prepared.output, factor=factor)


@dsl.pipeline(name="bench-{n}-b")
def pipeline_{n}_b(rows: int = {n}) -> None:
    with dsl.ParallelFor([1, 2, 3]) as item:
        score_{n}(value=item, factor=1.0)
    prepare_{n}(rows=rows)
'''


def _generate(root: Path) -> list[tuple[Path, str]]:
    pipelines = []
    for n in range(12):
        path = root / "pipelines" / f"bench_{n:02d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(MODULE.format(n=n), encoding="utf-8")
        pipelines += [(path, f"pipeline_{n}_a"), (path, f"pipeline_{n}_b")]
    return pipelines


def _time(argv: list[str], cwd: Path) -> float:
    env = {**os.environ, "GITHUB_ACTIONS": ""}
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def main() -> int:
    _installed.prepare()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per kfp-ci measurement (median)")
    parser.add_argument("--kfp-runs", type=int, default=1, help="sequential passes of 24 kfp dsl compile calls")
    args = parser.parse_args()
    if not (BIN / "kfp").exists():
        raise SystemExit(f"kfp's CLI is not installed next to {sys.executable}")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="kfp-ci-bench-") as tmp:
        root = Path(tmp)
        pipelines = _generate(root)
        (root / "kfp-out").mkdir()
        # Check that both produce the same bytes, and time kfp's CLI once per pipeline, sequentially.
        kfp_totals = []
        for _ in range(args.kfp_runs):
            total = 0.0
            for path, function in pipelines:
                total += _time([*KFP, "dsl", "compile", "--py", str(path), "--function", function, "--output",
                                str(root / "kfp-out" / f"{function}.yaml")], root)
            kfp_totals.append(total)
        cold, warm = [], []
        for _ in range(args.repeat):
            shutil.rmtree(root / ".kfp-ci", ignore_errors=True)
            shutil.rmtree(root / "out", ignore_errors=True)
            cold.append(_time([*KFP_CI, "compile", "pipelines", "--out-dir", "out"], root))
        for _ in range(args.repeat):
            warm.append(_time([*KFP_CI, "compile", "pipelines", "--out-dir", "out"], root))
        same = sum(
            (root / "kfp-out" / f"{fn}.yaml").read_bytes()
            == (root / "out" / f"bench-{fn.split('_')[1]}-{fn.split('_')[2]}.yaml").read_bytes()
            for _, fn in pipelines
        )
        help_ci = [_time([*KFP_CI, "--help"], root) for _ in range(max(args.repeat, 7))]
        help_kfp = [_time([*KFP, "--help"], root) for _ in range(max(args.repeat, 7))]
    load_after = os.getloadavg()

    kfp_med = statistics.median(kfp_totals)
    cold_med, warm_med = statistics.median(cold), statistics.median(warm)
    hci, hkfp = statistics.median(help_ci), statistics.median(help_kfp)
    print(f"24 pipelines in 12 files; {os.cpu_count()} CPUs; load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after; kfp-ci outputs byte-identical to kfp's: {same}/24")
    print()
    print("| measurement | median | vs kfp's CLI |")
    print("|---|---:|---:|")
    print(f"| `kfp dsl compile` x 24, sequential | {kfp_med:.2f} s | 1x |")
    print(f"| `kfp-ci compile` cold (no cache) | {cold_med:.2f} s | {kfp_med / cold_med:.1f}x faster |")
    print(f"| `kfp-ci compile` warm (nothing changed) | {warm_med * 1000:.0f} ms | {kfp_med / warm_med:.0f}x faster |")
    print(f"| `kfp --help` | {hkfp * 1000:.0f} ms | 1x |")
    print(f"| `kfp-ci --help` | {hci * 1000:.0f} ms | {hkfp / hci:.1f}x faster |")
    print()
    goals = [
        ("cold >= 10x faster than kfp's CLI", kfp_med / cold_med >= 10),
        ("warm <= 0.3 s", warm_med <= 0.3),
        ("kfp-ci --help <= 150 ms", hci <= 0.150),
        ("kfp-ci --help >= 4x faster than kfp --help", hkfp / hci >= 4),
        ("outputs identical to kfp's", same == 24),
    ]
    for goal, met in goals:
        print(f"- {'met' if met else 'MISSED'}: {goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
