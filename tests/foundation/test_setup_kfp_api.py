"""scripts/setup-kfp-api: the specs beside the checkout are used as they are; elsewhere they are fetched and checked."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from kfp_api_spec import spec_dir

ROOT = Path(__file__).resolve().parents[2]


def _run(checkout: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "KFP_CI_SHARED" and not k.lower().endswith("_proxy")}
    return subprocess.run([str(checkout / "scripts" / "setup-kfp-api")], capture_output=True, text=True, timeout=60,
                          env={**base, **env})


def _checkout(tmp_path: Path) -> Path:
    """A checkout with no shared/ beside it (tmp_path/work/repo)."""
    repo = tmp_path / "work" / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup-kfp-api", repo / "scripts")
    return repo


def test_verified_copies_are_kept_and_a_bad_one_is_fetched_again_or_named(tmp_path: Path) -> None:
    repo = _checkout(tmp_path)
    fetched = repo / ".kfp-ci" / "shared" / "kfp-api"
    fetched.mkdir(parents=True)
    for spec in spec_dir().glob("*.swagger.json"):
        shutil.copy(spec, fetched)
    ok = _run(repo)
    assert ok.returncode == 0 and "specs ready" in ok.stdout  # every SHA-256 matched: nothing downloaded
    (fetched / "v2beta1-2.5.0.swagger.json").write_text("{}")
    # the corrupt file must be fetched again; the proxy (a closed loopback port) makes that fail, as offline
    failed = _run(repo, https_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    assert failed.returncode == 1
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("setup-kfp-api: cannot download https://raw.githubusercontent.com/"
                                                   "kubeflow/pipelines/2.5.0/backend/api/v2beta1/swagger/")
    assert "Traceback" not in failed.stderr and "set KFP_CI_SHARED" in lines[0]


def test_specs_named_by_kfp_ci_shared_are_used(tmp_path: Path) -> None:
    result = _run(_checkout(tmp_path), KFP_CI_SHARED=str(spec_dir().parent))
    assert result.returncode == 0 and f"using {spec_dir().parent}/kfp-api" in result.stdout
