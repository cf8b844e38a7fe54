"""Every package KFP's upload accepts, and TFX/Vertex PipelineJob files, deployed against the embedded server.

The packages are built from pipelines compiled by the real kfp compiler (``compiled`` fixture), packed the way
kfp 1.8's ``dsl-compile --output x.tar.gz``/``.zip`` and TFX's runners write them (one ``pipeline.yaml`` member).
"""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from kfp_ci._package import read_package
from kfp_ci.deploy._versioning import content_hash

from .gitrepo import commit_all, make_repo
from .test_deploy_e2e import kfp_ci, sdk, versions_of

# A platform-spec document as kfp-kubernetes appends it (kfp_kubernetes.add_node_selector on the add task).
PLATFORM_SPEC = {"platforms": {"kubernetes": {"deploymentSpec": {"executors": {
    "exec-add": {"nodeSelector": {"labels": {"disktype": "ssd"}}}}}}}}


def tar_gz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def zip_file(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def pipeline_job(spec: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A PipelineJob as TFX's KubeflowV2DagRunner and Vertex AI tooling write it."""
    return {"displayName": spec["pipelineInfo"]["name"], "labels": {"team": "ml", "tfx_version": "1-15-0"},
            "pipelineSpec": spec,
            "runtimeConfig": {"gcsOutputDirectory": "gs://bucket/root", "parameterValues": values}}


@pytest.fixture
def project(tmp_path: Path, compiled: dict[str, Path]) -> Path:
    """A git repo holding add-square compiled to YAML, packed as tar.gz, zip and JSON, plus its platform variant."""
    root = make_repo(tmp_path / "project", {"README.md": "packages\n"})
    data = compiled["add-square"].read_bytes()
    spec = yaml.safe_load(data)
    (root / "add-square.yaml").write_bytes(data)
    tar_gz(root / "pipeline.tar.gz", {"pipeline.yaml": data})
    zip_file(root / "pipeline.zip", {"pipeline.yaml": data})
    (root / "add-square.json").write_text(json.dumps(spec, indent=1))
    (root / "platform.yaml").write_text(data.decode() + "---\n" + yaml.safe_dump(PLATFORM_SPEC))
    needs = yaml.safe_load(compiled["needs-input"].read_bytes())
    (root / "job.json").write_text(json.dumps(pipeline_job(needs, {"epochs": 5, "rate": 0.5})))
    commit_all(root, "packages")
    return root


# -------------------------------------------------------------------------------------------- offline
def test_each_container_is_recognised_and_hashes_like_the_yaml(project: Path) -> None:
    found = {name: read_package(project / name) for name in
             ("add-square.yaml", "pipeline.tar.gz", "pipeline.zip", "add-square.json")}
    assert found["pipeline.tar.gz"].describe() == "KFP v2 pipeline spec in pipeline.tar.gz (pipeline.yaml)"
    assert found["pipeline.zip"].describe() == "KFP v2 pipeline spec in pipeline.zip (pipeline.yaml)"
    assert found["add-square.json"].describe() == "KFP v2 pipeline spec in add-square.json"
    hashes = {name: content_hash(p.content, list(p.docs)) for name, p in found.items()}
    assert len(set(hashes.values())) == 1, hashes
    assert all(p.pipeline_name == "add-square" and p.kind == "v2" for p in found.values())
    # the archive member is what gets uploaded, byte for byte
    assert found["pipeline.tar.gz"].content == (project / "add-square.yaml").read_bytes()

    platform = read_package(project / "platform.yaml")
    assert platform.describe() == "KFP v2 pipeline spec with a platform spec in platform.yaml"
    assert platform.platform_spec == PLATFORM_SPEC
    assert content_hash(platform.content, list(platform.docs)) != hashes["add-square.yaml"]


@pytest.mark.parametrize(("members", "message"), [
    ({"a.yaml": b"x", "b.yaml": b"y"}, "holds 2 files (a.yaml, b.yaml): a pipeline {what} must hold pipeline.yaml"),
    ({}, "is an empty {what}: it must hold the pipeline file"),
    ({"README.txt": b"hello"}, "holds README.txt, not a pipeline file"),
    ({"pipeline.yaml": b"apiVersion: v1\nkind: ConfigMap\n"}, "(pipeline.yaml) is not a KFP pipeline: expected a v2"),
    ({"pipeline.yaml": b""}, "(pipeline.yaml) is empty"),
])
@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_a_broken_archive_is_one_line_and_nothing_is_uploaded(
    kfp_server: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, members: dict[str, bytes],
    message: str, kind: str,
) -> None:
    srv = kfp_server(execute=False)
    monkeypatch.chdir(tmp_path)
    name = f"broken.{kind}"
    (tar_gz if kind == "tar.gz" else zip_file)(tmp_path / name, members)
    code, out, _ = kfp_ci("deploy", name, "--host", srv.url, "--run")
    assert code == 2, out
    what = "tar.gz archive" if kind == "tar.gz" else "zip archive"
    errors = [line for line in out.splitlines() if line.startswith("kfp-ci: error:")]
    assert len(errors) == 1 and "Traceback" not in out, out
    assert f"{name}" in errors[0] and message.format(what=what) in errors[0], errors[0]
    assert not (sdk(srv.url).list_pipelines().pipelines or [])


@pytest.mark.parametrize(("name", "data", "message"), [
    ("pipeline.tar.gz", b"\x1f\x8b\x08\x00garbage", "pipeline.tar.gz is not a valid tar.gz archive"),
    ("pipeline.zip", b"PK\x03\x04garbage", "pipeline.zip is not a valid zip archive"),
    ("pipeline.bin", b"\x00\x01", "pipeline.bin is not a pipeline package: KFP takes a .yaml, .yml or .json file"),
    ("job.json", b'{"pipelineSpec": {"a": 1}}', "is a PipelineJob whose pipelineSpec is not a KFP v2 pipeline spec"),
    ("two.yaml", b"", "two.yaml is empty"),
])
def test_a_file_that_is_no_package_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                                               data: bytes, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_bytes(data)
    code, out, _ = kfp_ci("deploy", name, "--host", "http://127.0.0.1:9", "--dry-run")
    assert code == 2 and "Traceback" not in out, out
    (error,) = [line for line in out.splitlines() if line.startswith("kfp-ci: error:")]
    assert message in error, error


# ---------------------------------------------------------------------------------------- end to end
def test_archives_and_json_deploy_and_repacking_is_unchanged(
    kfp_server: Callable[..., Any], project: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    srv = kfp_server(execute=False)
    monkeypatch.chdir(project)
    code, out, data = kfp_ci("deploy", "pipeline.tar.gz", "--host", srv.url, "--run", "--param", "a=4", "-o", "json")
    assert code == 0, out
    assert "found KFP v2 pipeline spec in pipeline.tar.gz (pipeline.yaml)" in out
    assert data["pipeline"] == "add-square" and data["version_action"] == "uploaded"
    client = sdk(srv.url)
    version = client.get_pipeline_version(data["pipeline_id"], data["version_id"])
    assert version.pipeline_spec["pipelineInfo"]["name"] == "add-square"
    assert client.get_run(data["run_id"]).runtime_config.parameters == {"a": 4.0}
    # The same pipeline re-packed: zip, JSON and the plain YAML are the same version.
    for package in ("pipeline.zip", "add-square.json", "add-square.yaml"):
        code, out, again = kfp_ci("deploy", package, "--host", srv.url, "-o", "json")
        assert code == 0, out
        assert again["version_action"] == "unchanged" and again["version_id"] == data["version_id"], package
        assert again["content_hash"] == data["content_hash"]
    assert len(versions_of(srv.url, "add-square")) == 1
    # JSON as the first upload (another server): the server gets the .json file and reads it
    other = kfp_server(execute=False)
    code, out, first = kfp_ci("deploy", "add-square.json", "--host", other.url, "-o", "json")
    assert code == 0 and first["version_action"] == "uploaded", out
    assert "found KFP v2 pipeline spec in add-square.json" in out
    uploaded = sdk(other.url).get_pipeline_version(first["pipeline_id"], first["version_id"])
    assert uploaded.pipeline_spec == yaml.safe_load((project / "add-square.yaml").read_bytes())


def test_multi_document_yaml_with_a_platform_spec(kfp_server: Callable[..., Any], project: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    srv = kfp_server(execute=False)
    monkeypatch.chdir(project)
    code, out, data = kfp_ci("deploy", "platform.yaml", "--host", srv.url, "--name", "add-square-k8s",
                             "--description", "with a node selector", "-o", "json")
    assert code == 0, out
    assert "found KFP v2 pipeline spec with a platform spec in platform.yaml" in out
    client = sdk(srv.url)
    pipeline = client.get_pipeline(data["pipeline_id"])
    assert pipeline.display_name == "add-square-k8s" and pipeline.description == "with a node selector"
    version = client.get_pipeline_version(data["pipeline_id"], data["version_id"])
    # as KFP answers a version whose package has a platform spec: both documents, as subfields
    assert version.pipeline_spec["pipeline_spec"]["pipelineInfo"]["name"] == "add-square"
    assert version.pipeline_spec["platform_spec"] == PLATFORM_SPEC


def test_a_pipeline_job_is_unwrapped_and_its_values_are_the_run_defaults(
    kfp_server: Callable[..., Any], project: Path, monkeypatch: pytest.MonkeyPatch, compiled: dict[str, Path],
) -> None:
    srv = kfp_server(execute=False)
    monkeypatch.chdir(project)
    code, out, data = kfp_ci("deploy", "job.json", "--host", srv.url, "--run", "-o", "json")
    assert code == 0, out
    assert "found PipelineJob (TFX/Vertex) holding a KFP v2 pipeline spec in job.json" in out
    assert data["pipeline"] == "needs-input"  # pipelineSpec.pipelineInfo.name
    client = sdk(srv.url)
    # what was uploaded is the pipeline spec, not the wrapper
    version = client.get_pipeline_version(data["pipeline_id"], data["version_id"])
    assert version.pipeline_spec == yaml.safe_load(compiled["needs-input"].read_bytes())
    assert client.get_run(data["run_id"]).runtime_config.parameters == {"epochs": 5, "rate": 0.5}
    # a flag wins over the PipelineJob's value; the unwrapped spec hashes like the spec itself
    code, out, again = kfp_ci("deploy", "job.json", "--host", srv.url, "--run", "--run-always", "--param", "rate=0.25",
                             "-o", "json")
    assert code == 0 and again["version_action"] == "unchanged", out
    assert client.get_run(again["run_id"]).runtime_config.parameters == {"epochs": 5, "rate": 0.25}
    # [tool.kfp-ci] parameters win too
    (project / "pyproject.toml").write_text('[tool.kfp-ci]\n[[tool.kfp-ci.pipelines]]\nbuild = "true"\n'
                                            'output = "job.json"\nparameters = { epochs = 7 }\n')
    code, out, third = kfp_ci("deploy", "job.json", "--host", srv.url, "--run", "--run-always", "-o", "json")
    assert code == 0, out
    assert client.get_run(third["run_id"]).runtime_config.parameters == {"epochs": 7, "rate": 0.5}


def test_a_pipeline_job_value_the_pipeline_does_not_take_is_one_line(project: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    job = json.loads((project / "job.json").read_text())
    job["runtimeConfig"]["parameterValues"]["epochs"] = "five"
    (project / "bad-job.json").write_text(json.dumps(job))
    code, out, _ = kfp_ci("deploy", "bad-job.json", "--host", "http://127.0.0.1:9", "--run", "--dry-run")
    assert code == 2, out
    assert "bad-job.json runtimeConfig.parameterValues: epochs='five' does not match the input's type" in out
    job["runtimeConfig"]["parameterValues"] = {"epochs": 1, "lr": 2}
    (project / "bad-job.json").write_text(json.dumps(job))
    code, out, _ = kfp_ci("deploy", "bad-job.json", "--host", "http://127.0.0.1:9", "--run", "--dry-run")
    assert code == 2 and "the pipeline has no input 'lr'" in out, out


# ---------------------------------------------------------------------------------------------- kfp 1.8
@pytest.mark.kfp1
@pytest.mark.slow
def test_argo_workflows_in_archives_against_a_kfp_1_8_server(
    kfp_server: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """kfp 1.8 compiles straight to .tar.gz and .zip (one pipeline.yaml member): both deploy, as one version."""
    import os
    import subprocess

    python = Path(os.environ.get("KFP_CI_KFP1_VENV", "/nonexistent")) / "bin" / "python"
    if not python.exists():
        python = Path(__file__).parents[2] / ".venv-kfp1" / "bin" / "python"
    assert python.exists(), "the kfp 1.8 venv is missing: run scripts/setup-kfp1 (scripts/test does)"
    root = make_repo(tmp_path / "v1", {"README.md": "v1\n"})
    source = Path(__file__).parents[1] / "compile" / "broken" / "v1_style.py"
    script = ("import runpy, sys\nmod = runpy.run_path(sys.argv[1])\nimport kfp\n"
              "kfp.compiler.Compiler().compile(mod['v1_style'], sys.argv[2])\n")
    subprocess.run([str(python), "-c", script, str(source), str(root / "pipeline.tar.gz")], check=True,
                   capture_output=True, cwd=root)
    with tarfile.open(root / "pipeline.tar.gz") as archive:
        assert archive.getnames() == ["pipeline.yaml"]
        handle = archive.extractfile("pipeline.yaml")
        assert handle is not None
        workflow = handle.read()
    # the same workflow re-packed as kfp 1.8 packs a zip (compiling again would stamp another compilation time)
    zip_file(root / "pipeline.zip", {"pipeline.yaml": workflow})
    commit_all(root, "kfp 1.8 packages")
    srv = kfp_server(execute=False, compat="1.8")
    monkeypatch.chdir(root)
    code, out, data = kfp_ci("deploy", "pipeline.tar.gz", "--host", srv.url, "--run", "--param", "a=5", "-o", "json")
    assert code == 0, out
    assert "found Argo workflow (KFP v1) in pipeline.tar.gz (pipeline.yaml)" in out
    assert data["pipeline"] == "v1-style" and data["version_action"] == "uploaded"
    from kfp_ci.client import Client

    client = Client(srv.url)
    assert client.server.api == "v1beta1"
    run = client.get_run(data["run_id"])
    assert {"a": "5"}.items() <= {k: str(v) for k, v in (run.parameters or {}).items()}.items(), run
    code, out, again = kfp_ci("deploy", "pipeline.zip", "--host", srv.url, "-o", "json")
    assert code == 0, out
    assert "found Argo workflow (KFP v1) in pipeline.zip (pipeline.yaml)" in out
    assert again["version_action"] == "unchanged" and again["version_id"] == data["version_id"]


# --------------------------------------------------------------------------------------- --name, run, schedule
def test_run_and_schedule_take_the_package_file_and_name_and_describe(
    kfp_server: Callable[..., Any], project: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    srv = kfp_server(execute=False)
    monkeypatch.chdir(project)
    code, out, data = kfp_ci("deploy", "job.json", "--host", srv.url, "--name", "trainer", "-o", "json")
    assert code == 0 and data["pipeline"] == "trainer", out
    client = sdk(srv.url)
    # run: the pipeline the file was deployed as (--name), with the PipelineJob's values as defaults
    code, out, ran = kfp_ci("run", "job.json", "--name", "trainer", "--host", srv.url, "--param", "rate=0.75",
                            "--description", "a manual retrain", "-o", "json")
    assert code == 0, out
    run = client.get_run(ran["run_id"])
    assert run.runtime_config.parameters == {"epochs": 5, "rate": 0.75}
    assert run.description == "a manual retrain"
    # schedule: the same, and the description heads the recurring run's own
    code, out, scheduled = kfp_ci("schedule", "job.json", "--name", "trainer", "--every", "6h", "--host", srv.url,
                                  "--description", "retrain every 6 hours", "-o", "json")
    assert code == 0, out
    (recurring,) = client.list_recurring_runs(page_size=10).recurring_runs
    assert recurring.description.startswith("retrain every 6 hours\n")
    assert scheduled["recurring_run_id"] == recurring.recurring_run_id
    assert recurring.runtime_config.parameters == {"epochs": 5, "rate": 0.5}
    # without --name the file's own pipeline name is used: not deployed under that name
    code, out, _ = kfp_ci("run", "job.json", "--host", srv.url)
    assert code == 2 and "no pipeline named 'needs-input'" in out, out
    code, out, _ = kfp_ci("run", "trainer", "--name", "other", "--host", srv.url)
    assert code == 2 and "--name names the pipeline of a package file; 'trainer' is a pipeline name already" in out
    code, out, _ = kfp_ci("deploy", "job.json", "pipeline.zip", "--name", "x", "--host", srv.url)
    assert code == 2 and "--name and --description name one pipeline; this deploys 2" in out, out


# ------------------------------------------------------------------------------------- the server double
def test_kfp_ci_serve_takes_the_archives_kfp_takes_from_the_kfp_sdk(kfp_server: Callable[..., Any],
                                                                   project: Path) -> None:
    """kfp.Client uploads archives as they are: kfp-ci serve picks the member like KFP (pipeline.yaml first)."""
    srv = kfp_server(execute=False)
    client = sdk(srv.url)
    data = (project / "add-square.yaml").read_bytes()
    mixed = zip_file(project / "mixed.zip", {"README.md": b"# notes\n", "pipeline.yaml": data})
    for number, package in enumerate((project / "pipeline.tar.gz", mixed, project / "add-square.json")):
        pipeline = client.upload_pipeline(str(package), pipeline_name=f"p{number}")
        (version,) = client.list_pipeline_versions(pipeline.pipeline_id).pipeline_versions
        assert version.pipeline_spec["pipelineInfo"]["name"] == "add-square", package.name
    # KFP refuses an archive whose first member is not YAML when there is no pipeline.yaml
    notes = zip_file(project / "notes.zip", {"README.md": b"# notes\n", "p.yaml": data})
    with pytest.raises(Exception, match="Unexpected pipeline file format"):
        client.upload_pipeline(str(notes), pipeline_name="notes")
