"""The action and workflow files: their contract, the argv they build, and the linters that guard them."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ACTIONS = sorted([ROOT / "action.yml", *ROOT.glob("actions/*/action.yml")])
WORKFLOWS = sorted([*ROOT.glob(".github/workflows/*.yml"), *ROOT.glob("examples/github/*.yml")])
OUTPUTS = {"pipeline-id", "version-id", "version-name", "run-id", "run-url", "run-state", "recurring-run-id"}
SCRIPT = ROOT / "actions" / "_setup" / "kfp-ci.sh"


def _load(path: Path) -> dict[str, Any]:
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
    assert isinstance(data, dict)
    return data


def test_root_action_is_the_deploy_action() -> None:
    """`uses: owner/repo@v1` gets exactly the deploy action; only the path to the checkout differs."""
    root = (ROOT / "action.yml").read_text(encoding="utf-8")
    deploy = (ROOT / "actions" / "deploy" / "action.yml").read_text(encoding="utf-8")
    assert root == deploy.replace("${{ github.action_path }}/../..", "${{ github.action_path }}")
    assert "${{ github.action_path }}/../.." in deploy


@pytest.mark.parametrize("path", ACTIONS, ids=lambda p: str(p.relative_to(ROOT)))
def test_actions_are_composite_with_kebab_inputs_reaching_run_only_through_env(path: Path) -> None:
    action = _load(path)
    assert action["runs"]["using"] == "composite"
    assert "python-version" in action["inputs"]
    for name in action["inputs"]:
        assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", name), name
    for step in action["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), step
    used = "\n".join(str(v) for s in action["runs"]["steps"] for v in (s.get("env") or {}).values())
    used += "\n".join(str(v) for s in action["runs"]["steps"] for v in (s.get("with") or {}).values())
    for name in action["inputs"]:
        assert f"inputs.{name} }}}}" in used, f"input {name} is declared but never used"
    for secret in ("password", "token", "cookie"):
        if secret in action["inputs"]:
            [step] = [s for s in action["runs"]["steps"] if s.get("id") == "kfp-ci"]
            assert step["env"][f"KFP_CI_{secret.upper()}"] == f"${{{{ inputs.{secret} }}}}"


@pytest.mark.parametrize("name", ["action.yml", "actions/deploy/action.yml", "actions/run/action.yml"])
def test_deploy_and_run_actions_declare_every_output_from_the_kfp_ci_step(name: str) -> None:
    outputs = _load(ROOT / name)["outputs"]
    expected = OUTPUTS | ({"version-action", "results"} if "run" not in name else set())
    assert set(outputs) == expected
    for key, value in outputs.items():
        assert value["value"] == f"${{{{ steps.kfp-ci.outputs.{key} }}}}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: str(p.relative_to(ROOT)))
def test_workflows_have_empty_top_permissions_and_job_timeouts(path: Path) -> None:
    workflow = _load(path)
    assert workflow["permissions"] == {} or workflow["permissions"] == "{}"
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"{name}: no permissions"
        if "uses" not in job:  # a job calling a reusable workflow cannot take timeout-minutes
            assert "timeout-minutes" in job, f"{name}: no timeout-minutes"


def test_reusable_workflows_declare_typed_inputs_secrets_and_outputs() -> None:
    for name in ("kfp-validate", "kfp-deploy", "kfp-retrain"):
        call = _load(ROOT / ".github" / "workflows" / f"{name}.yml")["on"]["workflow_call"]
        assert all("type" in spec for spec in call["inputs"].values()), name
        assert call["outputs"], name
        if name != "kfp-validate":
            assert {"password", "token", "cookie"} <= set(call["secrets"]), name
    deploy = _load(ROOT / ".github" / "workflows" / "kfp-deploy.yml")
    assert OUTPUTS <= set(deploy["on"]["workflow_call"]["outputs"])
    job = deploy["jobs"]["deploy"]
    assert job["concurrency"]["cancel-in-progress"] == "false"
    assert "inputs.environment" in job["concurrency"]["group"]
    assert job["environment"] == "${{ inputs.environment }}"


# ------------------------------------------------------------------------------ argv built from inputs
@pytest.fixture
def fake_kfp_ci(tmp_path: Path) -> Path:
    """A stand-in kfp-ci that prints each argument on its own line and the secret env names it received."""
    fake = tmp_path / "kfp-ci"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do printf "arg:%s\\n" "$a"; done\n'
                    'printf "pwd:%s\\n" "$PWD"\n', encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return fake


def _argv(fake: Path, command: str, **inputs: str) -> tuple[int, list[str], str]:
    env = {"PATH": os.environ["PATH"], "KFP_CI_BIN": str(fake)}
    env.update({f"KFP_CI_IN_{k.upper()}": v for k, v in inputs.items()})
    done = subprocess.run(["bash", str(SCRIPT), command], env=env, capture_output=True, text=True, check=False)
    args = [line[4:] for line in done.stdout.splitlines() if line.startswith("arg:")]
    return done.returncode, args, done.stdout + done.stderr


def test_deploy_inputs_become_flags_lists_and_repeated_options(fake_kfp_ci: Path, tmp_path: Path) -> None:
    code, args, _ = _argv(fake_kfp_ci, "deploy", pipelines="train\n  compiled/score.yaml  ",
                          params="epochs=3\n\n  note=two words = fine \n", run="true", wait="True",
                          timeout="600", require="r2>=0.8\nmse<=120", dry_run="false",
                          working_directory=str(tmp_path), config="pyproject.toml")
    assert code == 0
    assert args == ["--config", "pyproject.toml", "deploy", "--param", "epochs=3", "--param",
                    "note=two words = fine", "--run", "--wait", "--timeout", "600", "--require", "r2>=0.8",
                    "--require", "mse<=120", "train", "compiled/score.yaml"]


def test_run_and_compile_commands(fake_kfp_ci: Path) -> None:
    code, args, _ = _argv(fake_kfp_ci, "run", pipeline="train", version="latest", wait="true")
    assert (code, args) == (0, ["run", "train", "--version", "latest", "--wait"])
    code, args, _ = _argv(fake_kfp_ci, "compile", check="true", format="github", paths="pipelines/*.py")
    assert (code, args) == (0, ["compile", "--check", "--format", "github", "pipelines/*.py"])


def test_a_bad_boolean_input_fails_with_one_line(fake_kfp_ci: Path) -> None:
    code, args, output = _argv(fake_kfp_ci, "deploy", run="maybe")
    assert code == 2 and not args
    assert "'maybe' is not a boolean" in output


# ------------------------------------------------------------------------------------------ linters
def _lint_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    for part in ("actions", ".github", "examples/github", "scripts/lint-actions", "action.yml"):
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, tree / part)
        else:
            (tree / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, tree / part)
    return tree


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run([str(tree / "scripts" / "lint-actions")], env=env, capture_output=True, text=True,
                          check=False, timeout=120)


@pytest.mark.slow
def test_lint_actions_is_clean_and_catches_an_input_inlined_into_run(tmp_path: Path) -> None:
    """Zero findings on the real files; an `${{ inputs.* }}` pasted into a run: block fails the lint."""
    tree = _lint_tree(tmp_path)
    clean = _lint(tree)
    assert clean.returncode == 0, clean.stdout[-3000:] + clean.stderr[-3000:]
    action = tree / "actions" / "run" / "action.yml"
    text = action.read_text(encoding="utf-8")
    action.write_text(text.replace("""run: '"$KFP_CI_ACTION_ROOT/actions/_setup/kfp-ci.sh" run'""",
                                   """run: 'echo ${{ inputs.pipeline }}'"""), encoding="utf-8")
    dirty = _lint(tree)
    assert dirty.returncode != 0
    assert "template-injection" in dirty.stdout + dirty.stderr


# ------------------------------------------------------------------------------------ venv and cache key
def _setup_script(name: str, tmp_path: Path, **env: str) -> tuple[int, dict[str, str], str]:
    out = tmp_path / f"{name}.out"
    out.write_text("", encoding="utf-8")
    full = {"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(out), "RUNNER_TEMP": str(tmp_path),
            "KFP_CI_ACTION_ROOT": str(ROOT), **env}
    done = subprocess.run(["bash", str(ROOT / "actions" / "_setup" / name)], env=full, capture_output=True,
                          text=True, check=False)
    outputs = dict(line.split("=", 1) for line in out.read_text(encoding="utf-8").splitlines() if "=" in line)
    return done.returncode, outputs, done.stdout + done.stderr


def test_cache_key_follows_python_and_extras(tmp_path: Path) -> None:
    code, core, _ = _setup_script("cache-key.sh", tmp_path, KFP_CI_ACTION_PYTHON=sys.executable)
    assert code == 0
    code, compile_, _ = _setup_script("cache-key.sh", tmp_path, KFP_CI_ACTION_PYTHON=sys.executable,
                                      KFP_CI_ACTION_EXTRAS="compile")
    version = ".".join(str(n) for n in sys.version_info[:3])
    assert core["key"].startswith(f"kfp-ci-action-Linux-py{version}-core-")
    assert compile_["key"].startswith(f"kfp-ci-action-Linux-py{version}-compile-")
    assert core["key"].split("-")[-2] == compile_["key"].split("-")[-2]  # same sources, same lock hash
    assert core["venv"] != compile_["venv"]
    assert compile_["venv"].startswith(str(tmp_path))


def test_cache_key_follows_the_users_kfp_pin_and_requirements(tmp_path: Path) -> None:
    """With compile, the kfp pin, the requirements files' content and pip arguments are in the key."""
    work = tmp_path / "repo"
    work.mkdir()
    (work / "requirements.txt").write_text("pandas==2.2.3\n", encoding="utf-8")
    base = {"KFP_CI_ACTION_PYTHON": sys.executable, "KFP_CI_ACTION_EXTRAS": "compile",
            "KFP_CI_ACTION_WORKDIR": str(work)}
    keys = {}
    for label, extra in [("plain", {}), ("pin", {"KFP_CI_ACTION_KFP_VERSION": "2.14.*"}),
                         ("req", {"KFP_CI_ACTION_REQUIREMENTS": "requirements.txt"}),
                         ("pip", {"KFP_CI_ACTION_PIP_INSTALL": "-e ."})]:
        code, outputs, _ = _setup_script("cache-key.sh", tmp_path, **base, **extra)
        assert code == 0
        keys[label] = (outputs["key"], outputs["venv"])
    assert len({k for k, _ in keys.values()}) == 4 and len({v for _, v in keys.values()}) == 4
    (work / "requirements.txt").write_text("pandas==2.2.2\n", encoding="utf-8")
    _, changed, _ = _setup_script("cache-key.sh", tmp_path, **base, KFP_CI_ACTION_REQUIREMENTS="requirements.txt")
    assert changed["key"] != keys["req"][0]
    # Without compile (a deploy that uploads committed files) the user's environment is not installed: one key.
    _, core_a, _ = _setup_script("cache-key.sh", tmp_path, KFP_CI_ACTION_PYTHON=sys.executable)
    _, core_b, _ = _setup_script("cache-key.sh", tmp_path, KFP_CI_ACTION_PYTHON=sys.executable,
                                 KFP_CI_ACTION_KFP_VERSION="2.14.*")
    assert core_a["key"] == core_b["key"]


@pytest.mark.parametrize(("inputs", "mode", "extras"), [
    ({}, "auto", ""),
    ({"KFP_CI_IN_COMPILE": "always"}, "always", "compile"),
    ({"KFP_CI_IMAGE": "ghcr.io/acme/t:1"}, "always", "compile"),
    ({"KFP_CI_IN_COMPILE": "never"}, "never", ""),
    ({"KFP_CI_IN_PIPELINES": "pipelines/p.py"}, "auto", "compile"),
    ({"KFP_CI_IN_PIPELINES": "missing"}, "auto", "compile"),
    ({"KFP_CI_IN_PIPELINES": "other.yaml"}, "auto", ""),
])
def test_needs_compile_installs_kfp_only_when_something_is_compiled(tmp_path: Path, inputs: dict[str, str],
                                                                    mode: str, extras: str) -> None:
    """compile auto: committed outputs are uploaded without kfp; a missing output, a source or an image compile."""
    work = tmp_path / "repo"
    (work / "pipelines").mkdir(parents=True)
    (work / "compiled").mkdir()
    (work / "pipelines" / "p.py").write_text("", encoding="utf-8")
    (work / "compiled" / "present.yaml").write_text("root: {}\n", encoding="utf-8")
    (work / "pyproject.toml").write_text(
        '[[tool.kfp-ci.pipelines]]\nsource = "pipelines/p.py:a"\nname = "present"\noutput = "compiled/present.yaml"\n'
        '[[tool.kfp-ci.pipelines]]\nsource = "pipelines/p.py:b"\nname = "missing"\noutput = "compiled/missing.yaml"\n',
        encoding="utf-8")
    if "KFP_CI_IN_PIPELINES" not in inputs and mode == "auto":
        inputs = {**inputs, "KFP_CI_IN_PIPELINES": "present"}
    out = tmp_path / "out"
    out.write_text("", encoding="utf-8")
    env = {"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(out), "PYTHONPATH": str(ROOT / "ci"),
           "KFP_CI_IN_WORKING_DIRECTORY": str(work), **inputs}
    done = subprocess.run([sys.executable, str(ROOT / "actions" / "_setup" / "needs-compile.py")], env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    outputs = dict(line.split("=", 1) for line in out.read_text(encoding="utf-8").splitlines())
    assert outputs == {"mode": mode, "extras": extras}


def test_install_reuses_a_given_venv_or_fails_in_one_line(tmp_path: Path) -> None:
    venv = str(Path(sys.executable).parent.parent)
    code, outputs, _ = _setup_script("install.sh", tmp_path, KFP_CI_ACTION_VENV=venv)
    assert code == 0
    assert outputs == {"bin": f"{venv}/bin/kfp-ci", "python": f"{venv}/bin/python"}
    code, outputs, text = _setup_script("install.sh", tmp_path, KFP_CI_ACTION_VENV=str(tmp_path / "nope"))
    assert code == 2 and not outputs
    assert "has no working kfp-ci" in text


REUSABLE = ("kfp-deploy.yml", "kfp-retrain.yml", "kfp-validate.yml")


@pytest.mark.parametrize("name", REUSABLE)
def test_reusable_workflows_check_out_the_commit_they_were_called_at(name: str) -> None:
    """One pin: kfp-ci's actions come from job.workflow_sha unless the override inputs are set."""
    workflow = _load(ROOT / ".github" / "workflows" / name)
    inputs = workflow["on"]["workflow_call"]["inputs"]
    assert inputs["kfp-ci-ref"]["default"] == "" and inputs["kfp-ci-repository"]["default"] == ""
    [job] = workflow["jobs"].values()
    [checkout] = [s for s in job["steps"] if s.get("with", {}).get("path") == ".kfp-ci-action"]
    assert checkout["with"]["ref"] == "${{ inputs.kfp-ci-ref || job.workflow_sha }}"
    assert "job.workflow_repository" in checkout["with"]["repository"]


def test_no_caller_must_grant_packages_write_except_to_build_an_image() -> None:
    for path in WORKFLOWS:
        for job in _load(path)["jobs"].values():
            if isinstance(job.get("permissions"), dict) and job["permissions"].get("packages") == "write":
                assert path.name == "kfp-image.yml", path
    validate = _load(ROOT / ".github" / "workflows" / "kfp-validate.yml")
    assert validate["jobs"]["validate"]["permissions"] == {"contents": "read"}  # the comment uses the caller's token


def _budget(workflow: str, **env: str) -> tuple[int, str, str]:
    [job] = _load(ROOT / ".github" / "workflows" / workflow)["jobs"].values()
    [step] = [s for s in job["steps"] if s.get("id") == "budget"]
    assert job["timeout-minutes"] == "${{ inputs.job-timeout-minutes }}"
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"budget-{os.getpid()}-{workflow}"
    out.write_text("", encoding="utf-8")
    done = subprocess.run(["bash", "-eo", "pipefail", "-c", step["run"]], env={"PATH": os.environ["PATH"],
                          "GITHUB_OUTPUT": str(out), **env}, capture_output=True, text=True, check=False)
    written = out.read_text(encoding="utf-8")
    out.unlink()
    return done.returncode, written, done.stdout + done.stderr


@pytest.mark.parametrize("workflow", ["kfp-deploy.yml", "kfp-retrain.yml"])
def test_the_wait_ends_before_the_job_limit(workflow: str) -> None:
    """timeout 0 = the job limit less 5 minutes; a timeout past that fails at once, naming the limit to set."""
    code, written, _ = _budget(workflow, TIMEOUT="0", JOB_MINUTES="60", WAITING="true")
    assert code == 0 and written == "timeout=3300\n"
    code, written, _ = _budget(workflow, TIMEOUT="1200", JOB_MINUTES="60", WAITING="true")
    assert code == 0 and written == "timeout=1200\n"
    code, written, text = _budget(workflow, TIMEOUT="3600", JOB_MINUTES="60", WAITING="true")
    assert code == 2 and written == ""
    assert "raise job-timeout-minutes to 65 or more" in text
    if workflow == "kfp-deploy.yml":  # no wait: no timeout is passed at all
        code, written, _ = _budget(workflow, TIMEOUT="0", JOB_MINUTES="60", WAITING="false")
        assert code == 0 and written == "timeout=\n"
