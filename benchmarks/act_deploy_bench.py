"""Wall time of the deploy job, run by act (self-hosted mode) with a real install, cold and warm cache.

The job is the example caller `examples/github/kfp-deploy.yml`'s shape (push to main -> kfp-deploy.yml -> the deploy
action) against `kfp-ci serve` on loopback with a bearer token, `run: true`, `wait: true`. The actions install
kfp-ci for real (pip, offline from a wheelhouse: the same wheels a runner would download), into the venv the
cache stand-in restores (its post step saves it, like actions/cache).

- before (issue 14, item 3): `compile: always`, what every deploy did before: install kfp-ci[compile] (kfp and its
  ~40 dependencies), compile the pipeline, upload it;
- after: `compile: auto`, the default: the compiled file is committed, so only kfp-ci's core is installed
  (httpx, pyyaml, click, bs4) and that file is uploaded.

Cold: an empty cache (a first run, or a new kfp-ci / Python / pin). Warm: the second run with the same key; the
venv is restored from the cache. Each measurement is a fresh consumer commit with a changed pipeline (so every run
uploads a version and starts a run) and a fresh act working directory.

    python benchmarks/act_deploy_bench.py [--rounds 2] [--wheelhouse DIR]

Needs act (the dev extra) and a wheelhouse (tests/actions fills ~/.cache/kfp-ci-test/wheelhouse).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "actions"))

from act_helpers import PIPELINE_SOURCE, compile_pipeline, git, write_stubs  # noqa: E402

from kfp_ci.local import LocalServer, ServerOptions  # noqa: E402

TOKEN = "bench-token-5f0c9a1e27d4"
CALLER = """
name: Deploy pipelines
on:
  push:
    branches: [main]
permissions: {}
jobs:
  deploy:
    permissions:
      contents: read
    uses: kfp-ci/kfp-ci/.github/workflows/kfp-deploy.yml@v1
    with:
      host: ${{ vars.KFP_HOST }}
      auth: token
      run: true
      wait: true
      compile: ${{ vars.KFP_COMPILE }}
    secrets:
      token: ${{ secrets.KFP_TOKEN }}
"""
PYPROJECT = """
[[tool.kfp-ci.pipelines]]
source = "pipelines/hello.py:hello_pipeline"
name = "hello-ci"
output = "compiled/hello-ci.yaml"
"""
CHECKOUT = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683"
SETUP_PYTHON = "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065"
CACHE = "actions/cache@5a3ec84eff668545956fd18022155c47e93e2684"


def _consumer(base: Path, revision: int) -> Path:
    repo = base / f"consumer-{revision}"
    (repo / "pipelines").mkdir(parents=True)
    (repo / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    source = PIPELINE_SOURCE.replace("rows: int = 3", f"rows: int = {revision}")
    (repo / "pipelines" / "hello.py").write_text(source, encoding="utf-8")
    compile_pipeline(repo / "pipelines" / "hello.py", repo / "compiled" / "hello-ci.yaml")
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "deploy.yml").write_text(CALLER, encoding="utf-8")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"revision {revision}")
    return repo


def _act(repo: Path, work: Path, stubs: object, server_url: str, mode: str, wheelhouse: Path, cache: Path,
         venv_root: Path) -> float:
    act = shutil.which("act") or str(Path(sys.executable).parent / "act")
    env_file = work / "act.env"
    env_file.write_text("\n".join([
        f"KFP_CI_TEST_CONSUMER={repo}", f"KFP_CI_TEST_KFP_CI={ROOT}", "PIP_NO_INDEX=1",
        f"PIP_FIND_LINKS={wheelhouse}", "PIP_DISABLE_PIP_VERSION_CHECK=1", f"KFP_CI_TEST_CACHE_STORE={cache}",
        f"KFP_CI_ACTION_VENV_ROOT={venv_root}"]) + "\n", encoding="utf-8")
    args = [act, "push", "-W", ".github/workflows/deploy.yml", "-P", "ubuntu-latest=-self-hosted",
            "--local-repository", f"{CHECKOUT}={stubs.checkout}",  # type: ignore[attr-defined]
            "--local-repository", f"{SETUP_PYTHON}={stubs.setup_python}",  # type: ignore[attr-defined]
            "--local-repository", f"{CACHE}={stubs.cache}",  # type: ignore[attr-defined]
            "--local-repository", f"kfp-ci/kfp-ci@v1={ROOT}", "--action-offline-mode", "--no-cache-server",
            "--var", f"KFP_HOST={server_url}", "--var", f"KFP_COMPILE={mode}", "-s", "KFP_TOKEN",
            "--env-file", str(env_file)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(KFP_TOKEN=TOKEN, HOME=str(work / "home"), XDG_CACHE_HOME=str(work / "xdg"))
    (work / "home").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    done = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, check=False, timeout=900)
    took = time.perf_counter() - start
    if done.returncode != 0 or "version-action=uploaded" not in done.stdout:
        sys.exit(f"act deploy ({mode}) failed:\n{(done.stdout + done.stderr)[-4000:]}")
    installs_kfp = "compiling, kfp is installed" in done.stdout
    if installs_kfp != (mode == "always"):
        sys.exit(f"compile {mode}: unexpected install:\n{done.stdout[-3000:]}")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--wheelhouse", type=Path,
                        default=Path(os.environ.get("KFP_CI_TEST_WHEELHOUSE")
                                     or Path.home() / ".cache" / "kfp-ci-test" / "wheelhouse"))
    args = parser.parse_args()
    if not args.wheelhouse.is_dir():
        sys.exit(f"no wheelhouse at {args.wheelhouse}: run tests/actions/test_act_user_env.py once to fill it")
    times: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        stubs = write_stubs(base / "stubs")
        options = ServerOptions(data_dir=base / "kfp", auth="token", tokens={TOKEN: "ci@example.com"},
                                execute=False, run_delay=0.2)
        revision = 10
        with LocalServer(options, host="127.0.0.1", port=0) as srv:
            for round_ in range(args.rounds):
                for mode in ("always", "auto"):
                    cache = base / f"cache-{mode}-{round_}"
                    # A fresh runner each time (nothing left on disk), at GitHub's fixed RUNNER_TEMP path.
                    venv_root = base / f"runner-temp-{mode}-{round_}"
                    for temperature in ("cold", "warm"):
                        revision += 1
                        repo = _consumer(base, revision)
                        work = base / f"work-{revision}"
                        work.mkdir()
                        shutil.rmtree(venv_root, ignore_errors=True)
                        took = _act(repo, work, stubs, srv.url, mode, args.wheelhouse, cache, venv_root)
                        times.setdefault((mode, temperature), []).append(took)
                        print(f"round {round_ + 1}: compile {mode:6} {temperature}: {took:6.1f} s", flush=True)
    print()
    print("| act deploy job (upload + run + wait) | cold cache | warm cache |")
    print("|---|---|---|")
    for mode, label in (("always", "before item 3: compile always (kfp installed)"),
                        ("auto", "after: compile auto, committed file (core only)")):
        cold, warm = statistics.median(times[(mode, "cold")]), statistics.median(times[(mode, "warm")])
        print(f"| {label} | {cold:.1f} s | {warm:.1f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
