#!/usr/bin/env python3
"""The "log in, upload a version, run it" script KFP tutorials teach, on the kfp-ci library.

    KFP_CI_HOST=https://kubeflow.example.com/pipeline KFP_CI_USERNAME=me@example.com \
    KFP_CI_PASSWORD=... python scripts/run_pipeline.py pipeline.yaml key=value ...

Login (Dex, token or cookie, from the environment), a git-named version, a typed run, and a wait that exits
non-zero unless the run succeeded. Re-running the same commit uploads nothing (and runs that version again).
"""

import sys

from kfp_ci.auth import client_from_settings
from kfp_ci.config import load_settings
from kfp_ci.deploy import deploy
from kfp_ci.errors import KfpCiError

try:
    settings = load_settings()
    client = client_from_settings(settings)  # logs in as the environment says
    params = dict(arg.split("=", 1) for arg in sys.argv[2:])
    result = deploy(client, sys.argv[1], namespace=settings.namespace, experiment="tutorial",
                    cli_params=tuple(params.items()), run=True, wait=True, run_always=True)
except KfpCiError as exc:
    sys.exit(f"error: {exc}")
print(f"version {result.version_name} ({result.version_action}); run {result.run_url}: {result.run_state}")
sys.exit(0 if result.run_state == "SUCCEEDED" else 1)
