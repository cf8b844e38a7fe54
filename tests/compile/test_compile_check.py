"""``--check`` judges content: no false reds from clock stamps, dict-default key order or another kfp version,
and no false greens from inputs the cache did not know about (files read at import, environment)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from compile_helpers import KFP, as_json, kfp_ci

DICT_DEFAULTS = '''from kfp import dsl


@dsl.component(base_image="python:3.11")
def show(cfg: dict, tags: list) -> str:
    return str(cfg) + str(tags)


@dsl.pipeline(name="dict-defaults")
def dict_defaults(
    cfg: dict = {"zeta": 1, "alpha": {"y": 2, "x": [1, {"q": 1, "b": 2}]}, "mid": "m", "beta": True, "delta": 1.5},
    tags: list = [{"k2": 1, "k1": 2}, 3],
) -> None:
    show(cfg=cfg, tags=tags)
'''


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin", "HOME": str(cwd)})


def _commit_and_clone(repo: Path, dest: Path) -> Path:
    (repo / ".gitignore").write_text(".kfp-ci/\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "pipelines and their compiled YAML")
    _git(dest.parent, "clone", "-q", str(repo), str(dest))
    assert not (dest / ".kfp-ci").exists()
    return dest


def _header_defaults(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if "[Default: " in line]


def test_dict_defaults_committed_by_kfp_are_fresh_20_times_in_a_fresh_clone(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "dict_defaults.py").write_text(DICT_DEFAULTS)
    subprocess.run([str(KFP), "dsl", "compile", "--py", "dict_defaults.py", "--output", "dict-defaults.yaml"],
                   cwd=repo, check=True, capture_output=True)
    clone = _commit_and_clone(repo, tmp_path / "clone")
    for run in range(20):  # kfp's upb runtime orders the dict keys differently from run to run; --check must not
        result = kfp_ci(["compile", "--check", "dict_defaults.py"], clone)
        assert result.exit_code == 0, f"run {run + 1}: {result.output}"
        assert "up to date" in result.stdout
    assert not (clone / ".kfp-ci").exists()  # every check compiled afresh: --check never writes the cache


def test_kfp_ci_writes_dict_defaults_in_one_order_equal_to_kfp_up_to_key_order(tmp_path: Path) -> None:
    (tmp_path / "dict_defaults.py").write_text(DICT_DEFAULTS)
    written = set()
    for _ in range(4):
        (tmp_path / "dict-defaults.yaml").unlink(missing_ok=True)
        assert kfp_ci(["compile", "dict_defaults.py", "--no-cache"], tmp_path).exit_code == 0
        written.add((tmp_path / "dict-defaults.yaml").read_bytes())
    assert len(written) == 1  # deterministic bytes
    ours = tmp_path / "dict-defaults.yaml"
    # the source's key order (as kfp writes it with protobuf's pure-Python runtime)
    assert _header_defaults(ours) == [
        "#    cfg: dict [Default: {'zeta': 1.0, 'alpha': {'y': 2.0, 'x': [1.0, {'q': 1.0, 'b': 2.0}]}, 'mid': 'm', "
        "'beta': True, 'delta': 1.5}]",
        "#    tags: list [Default: [{'k2': 1.0, 'k1': 2.0}, 3.0]]",
    ]
    subprocess.run([str(KFP), "dsl", "compile", "--py", "dict_defaults.py", "--output", "kfp.yaml"], cwd=tmp_path,
                   check=True, capture_output=True)
    kfp_lines = (tmp_path / "kfp.yaml").read_text().splitlines()
    our_lines = ours.read_text().splitlines()
    differing = [i for i, (a, b) in enumerate(zip(kfp_lines, our_lines, strict=True)) if a != b]
    assert all("[Default: " in our_lines[i] for i in differing)  # only the header's defaults may differ...
    for i in differing:  # ... and only in key order
        assert sorted(kfp_lines[i]) == sorted(our_lines[i])
    subprocess.run([str(KFP), "dsl", "compile", "--py", "dict_defaults.py", "--output", "kfp-python.yaml"],
                   cwd=tmp_path, check=True, capture_output=True,
                   env={**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"})
    assert (tmp_path / "kfp-python.yaml").read_bytes() == ours.read_bytes()


def test_a_real_change_of_a_dict_default_is_stale(tmp_path: Path) -> None:
    (tmp_path / "dict_defaults.py").write_text(DICT_DEFAULTS)
    assert kfp_ci(["compile", "dict_defaults.py"], tmp_path).exit_code == 0
    (tmp_path / "dict_defaults.py").write_text(DICT_DEFAULTS.replace('"mid": "m"', '"mid": "n"'))
    result = kfp_ci(["compile", "--check", "dict_defaults.py"], tmp_path)
    assert result.exit_code == 1
    assert "dict-defaults.yaml is stale" in result.stdout


def _kfp2_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "dict_defaults.py").write_text(DICT_DEFAULTS)
    assert kfp_ci(["compile", "dict_defaults.py"], repo).exit_code == 0
    shutil.rmtree(repo / ".kfp-ci")
    return repo


def test_another_kfp_version_is_named_not_called_stale(tmp_path: Path) -> None:
    """A file compiled by kfp 2.14.6 whose content is what 2.17 writes too: only the SDK stamp differs."""
    repo = _kfp2_repo(tmp_path)
    compiled = repo / "dict-defaults.yaml"
    ours = compiled.read_text()
    assert "sdkVersion: kfp-2." in ours
    compiled.write_text(ours.replace(f"sdkVersion: kfp-{_sdk(ours)}", "sdkVersion: kfp-2.14.6"))
    result = kfp_ci(["compile", "--check", "dict_defaults.py", "--format", "json"], repo)
    assert result.exit_code == 1
    (entry,) = as_json(result)["results"]
    assert entry["status"] == "sdk-mismatch" and entry["committed_sdk_version"] == "2.14.6"
    message = entry["error"]["message"]
    assert f"compiled with kfp 2.14.6, this is kfp {_sdk(ours)}" in message
    assert "only the SDK version stamp differs" in message and "pin kfp==2.14.6 in CI" in message
    assert "recompile" in message and "--ignore-sdk-version" in message

    assert kfp_ci(["compile", "--check", "dict_defaults.py", "--ignore-sdk-version"], repo).exit_code == 0
    (repo / "pyproject.toml").write_text("[tool.kfp-ci]\nignore-sdk-version = true\n")
    assert kfp_ci(["compile", "--check", "dict_defaults.py"], repo).exit_code == 0

    # another version AND other content: still named, and --ignore-sdk-version does not hide the change
    compiled.write_text(compiled.read_text().replace("python:3.11", "python:3.10"))
    result = kfp_ci(["compile", "--check", "dict_defaults.py", "--format", "json"], repo)
    (entry,) = as_json(result)["results"]
    assert result.exit_code == 1 and entry["status"] == "stale"
    (repo / "pyproject.toml").unlink()
    (entry,) = as_json(kfp_ci(["compile", "--check", "dict_defaults.py", "--format", "json"], repo))["results"]
    assert entry["status"] == "sdk-mismatch" and "its content differs too" in entry["error"]["message"]
    assert "python:3.10" in entry["diff"] and "-sdkVersion: kfp-2.14.6" in entry["diff"]


def _sdk(text: str) -> str:
    return text.split("sdkVersion: kfp-", 1)[1].split()[0]


def test_ignore_sdk_version_must_be_a_boolean_in_the_config(tmp_path: Path) -> None:
    repo = _kfp2_repo(tmp_path)
    (repo / "pyproject.toml").write_text("[tool.kfp-ci]\nignore-sdk-version = \"yes\"\n")
    result = kfp_ci(["compile", "--check", "dict_defaults.py"], repo)
    assert result.exit_code == 2
    assert "'ignore-sdk-version' must be true or false" in result.stderr


READS = '''import json
import os
from pathlib import Path

from kfp import dsl

HERE = Path(__file__).parent
DEFAULTS = json.load(open(HERE / "defaults.json"))
EXTRA = (HERE / "conf" / "extra.txt").read_text().strip()
try:
    with open(HERE / "optional.txt") as fh:
        OPTIONAL = fh.read().strip()
except FileNotFoundError:
    OPTIONAL = "none"
STAGE = os.environ.get("MY_PIPELINE_STAGE", "dev")
COMPONENTS = sorted(p.name for p in (HERE / "components").iterdir())


@dsl.component(base_image="python:3.11")
def echo(text: str) -> str:
    return text


@dsl.pipeline(name="reads")
def reads(rows: int = DEFAULTS["rows"], extra: str = EXTRA, optional: str = OPTIONAL, stage: str = STAGE,
          components: str = ",".join(COMPONENTS)) -> None:
    echo(text=extra)
'''


def test_files_directories_and_environment_read_at_import_are_in_the_cache_key(tmp_path: Path) -> None:
    (tmp_path / "reads.py").write_text(READS)
    (tmp_path / "defaults.json").write_text(json.dumps({"rows": 10}))
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "extra.txt").write_text("first\n")
    (tmp_path / "components").mkdir()
    (tmp_path / "components" / "a.yaml").write_text("name: a\n")
    output = tmp_path / "reads.yaml"

    def compile_(env: dict[str, str] | None = None) -> bool:
        result = kfp_ci(["compile", "reads.py", "--format", "json"], tmp_path, env={"MY_PIPELINE_STAGE": "",
                                                                                   **(env or {})})
        assert result.exit_code == 0, result.output
        (entry,) = as_json(result)["results"]
        return bool(entry["cached"])

    assert compile_() is False
    assert compile_() is True
    (tmp_path / "defaults.json").write_text(json.dumps({"rows": 20}))  # json.load(open(...)) at import
    assert compile_() is False and "defaultValue: 20.0" in output.read_text()
    (tmp_path / "conf" / "extra.txt").write_text("second\n")  # Path.read_text() at import
    assert compile_() is False and "defaultValue: second" in output.read_text()
    (tmp_path / "optional.txt").write_text("now here\n")  # a file that was missing when last compiled
    assert compile_() is False and "defaultValue: now here" in output.read_text()
    (tmp_path / "components" / "b.yaml").write_text("name: b\n")  # a directory listing
    assert compile_() is False and "defaultValue: a.yaml,b.yaml" in output.read_text()
    assert compile_() is True
    assert compile_({"MY_PIPELINE_STAGE": "prod"}) is False  # an environment variable the module read
    assert "defaultValue: prod" in output.read_text()
    assert compile_({"MY_PIPELINE_STAGE": "prod"}) is True
    assert compile_({"MY_PIPELINE_STAGE": "prod", "KF_PIPELINES_COMPILER_MODE": "V2_COMPATIBLE"}) is False
    entries = [json.loads(p.read_text()) for p in (tmp_path / ".kfp-ci" / "cache").glob("*.json")]
    stages = {e["env"]["MY_PIPELINE_STAGE"] for e in entries}
    assert "prod" not in stages and all(len(s) == 64 for s in stages if s)  # values stored hashed, never as such


def test_check_does_not_trust_a_warm_cache_when_a_read_file_changed(tmp_path: Path) -> None:
    (tmp_path / "reads.py").write_text(READS)
    (tmp_path / "defaults.json").write_text(json.dumps({"rows": 10}))
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "extra.txt").write_text("first\n")
    (tmp_path / "components").mkdir()
    assert kfp_ci(["compile", "reads.py"], tmp_path).exit_code == 0
    assert kfp_ci(["compile", "--check", "reads.py"], tmp_path).exit_code == 0
    (tmp_path / "defaults.json").write_text(json.dumps({"rows": 11}))
    result = kfp_ci(["compile", "--check", "reads.py"], tmp_path)
    assert result.exit_code == 1 and "reads.yaml is stale" in result.stdout


EMBEDDED = '''import os

from kfp import dsl

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")


@dsl.component(base_image="python:3.11", embedded_artifact_path=ASSETS)
def read_assets(artifact: dsl.EmbeddedInput[dsl.Dataset]) -> None:
    print(open(os.path.join(artifact.path, "greeting.txt")).read())


@dsl.pipeline(name="embedded")
def embedded() -> None:
    read_assets()
'''


def test_an_embedded_artifact_archive_is_compared_on_what_it_holds(tmp_path: Path) -> None:
    """kfp's gzip header holds the compile time and tar the files' mtimes (a fresh clone's checkout time)."""
    import base64
    import gzip
    import re

    (tmp_path / "embedded.py").write_text(EMBEDDED)
    (tmp_path / "assets").mkdir()
    greeting = tmp_path / "assets" / "greeting.txt"
    greeting.write_text("hello\n")
    subprocess.run([str(KFP), "dsl", "compile", "--py", "embedded.py", "--output", "embedded.yaml"], cwd=tmp_path,
                   check=True, capture_output=True)
    committed = tmp_path / "embedded.yaml"
    text = committed.read_text()
    match = re.search(r"__KFP_EMBEDDED_ARCHIVE_B64 = '([A-Za-z0-9+/=]+)'", text)
    assert match is not None
    restamped = base64.b64encode(gzip.compress(gzip.decompress(base64.b64decode(match.group(1))), mtime=1)).decode()
    committed.write_text(text.replace(match.group(1), restamped))  # as if compiled at another time
    os.utime(greeting, (1_000_000_000, 1_000_000_000))  # as if checked out at another time
    result = kfp_ci(["compile", "--check", "embedded.py"], tmp_path)
    assert result.exit_code == 0, result.output

    greeting.write_text("bonjour\n")  # what the archive holds counts
    result = kfp_ci(["compile", "--check", "embedded.py"], tmp_path)
    assert result.exit_code == 1 and "embedded.yaml is stale" in result.stdout
