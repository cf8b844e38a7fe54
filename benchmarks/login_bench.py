"""Dashboard login cost per Kubeflow generation, and API calls on the resulting session: kfp-ci vs kfp.Client.

Against the embedded server (``--auth dex``, ``--no-execute``) in one process:

- login: median wall time and HTTP requests of ``kfp_ci.auth`` walking each shape (the walk + the proving healthz);
- calls: median of 20 ``list_experiments`` through ``kfp_ci.client.Client`` with the Dex session (``DexSession``)
  and through ``kfp.Client(cookies=<the same session>)``, side by side, and their ratio.

    python benchmarks/login_bench.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import _installed
import httpx

from kfp_ci.auth import DexSession
from kfp_ci.auth._dex import dex_login
from kfp_ci.client import Client
from kfp_ci.local import LocalServer, ServerOptions

SHAPES = {
    "oauth2-proxy 1.9.1+": {"dex_shape": "oauth2-proxy", "kubeflow_version": "1.9.1"},
    "oauth2-proxy 1.9.0 (Grant Access)": {"dex_shape": "oauth2-proxy", "kubeflow_version": "1.9.0"},
    "oauth2-proxy, ldap, split cookie": {"dex_shape": "oauth2-proxy", "connectors": ("local", "ldap")},
    "authservice 1.8 (new Dex URLs)": {"dex_shape": "authservice", "kubeflow_version": "1.8"},
    "authservice 1.5 (old Dex URLs)": {"dex_shape": "authservice", "kubeflow_version": "1.5", "dex_url_shape": "old"},
}


def main() -> None:
    _installed.prepare()
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(f"{'shape':36} {'login median':>13} {'requests':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, shape) in enumerate(SHAPES.items()):
            opts = ServerOptions(data_dir=Path(tmp) / str(i), auth="dex", execute=False, **shape)  # type: ignore[arg-type]
            connector = "ldap" if "ldap" in name else None
            with LocalServer(opts) as srv:
                times, count = [], 0
                for _ in range(args.rounds):
                    sent: list[httpx.Request] = []
                    with httpx.Client(event_hooks={"request": [sent.append]}) as http:
                        start = time.perf_counter()
                        dex_login(http, srv.url + "/pipeline", "user@example.com" if not connector else "user",
                                  "12341234", connector=connector)
                        times.append(time.perf_counter() - start)
                    count = len(sent)
                print(f"{name:36} {statistics.median(times) * 1000:10.1f} ms {count:9d}")
        opts = ServerOptions(data_dir=Path(tmp) / "calls", auth="dex", execute=False)
        with LocalServer(opts) as srv:
            host = srv.url + "/pipeline"
            with httpx.Client() as http:
                session = dex_login(http, host, "user@example.com", "12341234")
            import kfp

            ours = Client(host, auth=DexSession(session, None))
            theirs = kfp.Client(host=host, cookies=session.header())
            ours.create_experiment("bench")
            a, b = [], []
            for _ in range(args.rounds):
                start = time.perf_counter()
                for _ in range(20):
                    ours.list_experiments()
                a.append(time.perf_counter() - start)
                start = time.perf_counter()
                for _ in range(20):
                    theirs.list_experiments()
                b.append(time.perf_counter() - start)
            ma, mb = statistics.median(a) / 20 * 1000, statistics.median(b) / 20 * 1000
            print(f"\nlist_experiments on the session (median per call): kfp-ci {ma:.2f} ms, kfp.Client {mb:.2f} ms, "
                  f"ratio {mb / ma:.1f}x")
            ours.close()


if __name__ == "__main__":
    main()
