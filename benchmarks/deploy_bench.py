"""The CI-shaped deploy, kfp-ci vs the kfp SDK as tutorials write it, against one local server in one run.

Both sides do the same job from a fresh process, as a CI step does: log in with Dex (username/password),
upload a new version of an existing pipeline, start a run, do not wait.

- kfp-ci: ``kfp-ci deploy pipeline.yaml --run --auth dex --version-name <unique>`` (the console script, a
  subprocess).
- kfp SDK: the tutorial script: a requests-based Dex login (the Kubeflow docs' KFPClientManager recipe), then
  ``kfp.Client(host, cookies=...)``, ``get_pipeline_id``, ``upload_pipeline_version``, ``create_experiment``,
  ``run_pipeline`` (a subprocess running the script below).

Reports the median wall time of each (alternating, N rounds), the ratio, and the HTTP requests each side
makes (counted in-process at the transport: httpx for kfp-ci, urllib3 for requests/kfp).

    python benchmarks/deploy_bench.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import _installed

ROOT = Path(__file__).resolve().parents[1]
USER, PASSWORD = "user@example.com", "12341234"

SDK_SCRIPT = textwrap.dedent(
    '''
    import os, re, sys
    from urllib.parse import urljoin
    import requests
    import kfp

    host, package, version = sys.argv[1], sys.argv[2], sys.argv[3]
    COUNT = [0]
    if os.environ.get("BENCH_COUNT"):
        import urllib3.connectionpool as cp
        _orig = cp.HTTPConnectionPool.urlopen
        def _counting(self, *a, **k):
            COUNT[0] += 1
            return _orig(self, *a, **k)
        cp.HTTPConnectionPool.urlopen = _counting

    # Dex login as the Kubeflow docs' KFPClientManager does it.
    s = requests.Session()
    if os.environ.get("BENCH_AUTH") == "none":
        s.get = lambda url, **k: None
    resp = s.get(host, allow_redirects=True)
    if resp is None:
        pass
    elif resp.status_code == 403 and "/oauth2/start" in resp.text:
        resp = s.get(urljoin(resp.url, "/oauth2/start?rd=" + "/"), allow_redirects=True)
    if resp is not None:
        if re.search(r"/auth$|/auth\\?", resp.url) or "/auth/local" in resp.text:
            m = re.search(r'href="([^"]*/auth/local[^"]*)"', resp.text)
            if m:
                resp = s.get(urljoin(resp.url, m.group(1).replace("&amp;", "&")), allow_redirects=True)
        action = re.search(r'<form[^>]*action="([^"]*)"', resp.text)
        login_url = urljoin(resp.url, action.group(1).replace("&amp;", "&")) if action else resp.url
        resp = s.post(login_url, data={"login": os.environ["BENCH_USER"], "password": os.environ["BENCH_PASSWORD"]},
                      allow_redirects=True)
        if "approval" in resp.url:
            resp = s.post(resp.url, data={"approval": "approve"}, allow_redirects=True)
    cookies = "; ".join(f"{c.name}={c.value}" for c in s.cookies)

    client = kfp.Client(host=host, cookies=cookies)
    pipeline_id = client.get_pipeline_id("bench")
    v = client.upload_pipeline_version(package, pipeline_version_name=version, pipeline_id=pipeline_id)
    exp = client.create_experiment("bench")
    run = client.run_pipeline(experiment_id=exp.experiment_id, job_name="bench " + version,
                              pipeline_id=pipeline_id, version_id=v.pipeline_version_id)
    print("REQUESTS", COUNT[0], run.run_id)
    '''
)

KFP_CI_COUNT = textwrap.dedent(
    '''
    import sys
    import httpx
    COUNT = [0]
    _orig = httpx.HTTPTransport.handle_request
    def _counting(self, request):
        COUNT[0] += 1
        return _orig(self, request)
    httpx.HTTPTransport.handle_request = _counting
    from kfp_ci.cli import main
    try:
        main(sys.argv[1:], prog_name="kfp-ci")
    except SystemExit as exc:
        if exc.code:
            raise
    print("REQUESTS", COUNT[0])
    '''
)


PIPELINE = textwrap.dedent(
    """
    from kfp import compiler, dsl

    @dsl.component(base_image="python:3.11")
    def add(a: float, b: float) -> float:
        return a + b

    @dsl.pipeline(name="bench")
    def bench(a: float = 1.0, b: float = 2.0) -> float:
        return add(a=add(a=a, b=b).output, b=b).output

    if __name__ == "__main__":
        import sys
        compiler.Compiler().compile(bench, sys.argv[1])
    """
)


def _compile(out: Path) -> Path:
    source, path = out / "bench_pipeline.py", out / "bench.yaml"
    source.write_text(PIPELINE)
    subprocess.run([sys.executable, str(source), str(path)], check=True, timeout=120)
    return path


def _variant(package: Path, tag: str) -> Path:
    """The package with another description: a changed pipeline (an unchanged one uploads nothing and runs nothing)."""
    import yaml

    docs = list(yaml.safe_load_all(package.read_text()))
    docs[0].setdefault("pipelineInfo", {})["description"] = f"bench {tag}"
    path = package.with_name(f"bench-{tag}.yaml")
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return elapsed, proc.stdout


def _requests(stdout: str) -> int:
    for line in stdout.splitlines():
        if line.startswith("REQUESTS"):
            return int(line.split()[1])
    return -1


def main(argv: list[str] | None = None) -> int:
    _installed.prepare()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--auth", choices=["dex", "none"], default="dex", help="Login emulation (default dex).")
    args = parser.parse_args(argv)
    from kfp_ci.local import LocalServer, ServerOptions

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        package = _compile(work)
        options = ServerOptions(data_dir=work / "server", auth=args.auth, users={USER: PASSWORD}, execute=False)
        with LocalServer(options, host="127.0.0.1", port=0) as server:
            url = server.url
            env = {**os.environ, "KFP_CI_PASSWORD": PASSWORD, "KFP_CI_USERNAME": USER, "BENCH_USER": USER,
                   "BENCH_PASSWORD": PASSWORD, "KFP_CI_CONFIG": "", "GITHUB_OUTPUT": "", "GITHUB_STEP_SUMMARY": "",
                   "XDG_CACHE_HOME": str(work / "cache"), "BENCH_AUTH": args.auth}
            env.pop("GITHUB_ACTIONS", None)
            script = work / "sdk_deploy.py"
            script.write_text(SDK_SCRIPT)
            # The console script, as a CI step runs it (python -m kfp_ci when it is not installed as a script).
            script_path = Path(sys.executable).with_name("kfp-ci")
            launcher = [str(script_path)] if script_path.exists() else [sys.executable, "-m", "kfp_ci"]
            options = ["--host", url, "--auth", args.auth, "--run", "--experiment", "bench"]
            # The pipeline exists before the measured rounds (the CI case: a push to main).
            _run([*launcher, "deploy", str(package), *options, "--version-name", "setup"], env)
            ours: list[float] = []
            theirs: list[float] = []
            # Each round deploys a changed package (as a push that changed the pipeline does), on both sides.
            for i in range(args.rounds):
                changed = _variant(package, str(i))
                ours.append(_run([*launcher, "deploy", str(changed), *options, "--version-name", f"kfp-ci-{i}"],
                                 env)[0])
                theirs.append(_run([sys.executable, str(script), url, str(changed), f"sdk-{i}"], env)[0])
            count_env = {**env, "BENCH_COUNT": "1"}
            ours_requests = _requests(_run([sys.executable, "-c", KFP_CI_COUNT, "deploy",
                                            str(_variant(package, "count")), *options, "--version-name", "count"],
                                           count_env)[1])
            theirs_requests = _requests(_run([sys.executable, str(script), url, str(_variant(package, "sdk-count")),
                                              "sdk-count"], count_env)[1])
    ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
    result: dict[str, Any] = {
        "rounds": args.rounds,
        "kfp-ci median s": round(ours_median, 3),
        "kfp SDK median s": round(theirs_median, 3),
        "ratio (SDK / kfp-ci)": round(theirs_median / ours_median, 2),
        "kfp-ci HTTP requests": ours_requests,
        "kfp SDK HTTP requests": theirs_requests,
    }
    width = max(len(k) for k in result)
    login = "Dex login" if args.auth == "dex" else "no login"
    print(f"CI-shaped deploy ({login}, upload a version of an existing pipeline, start a run, no wait)")
    for key, value in result.items():
        print(f"  {key.ljust(width)}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
