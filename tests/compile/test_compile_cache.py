"""The cache (hit, miss, invalidation through a local module, a component YAML, options) and --check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from compile_helpers import as_json, copy_tree, kfp_ci


def _cached(project: Path, *extra: str) -> bool:
    result = kfp_ci(["compile", "--format", "json", *extra], project)
    assert result.exit_code == 0, result.output
    (entry,) = as_json(result)["results"]
    assert entry["output"] == "compiled/train.yaml"  # relative to the root (here: the cwd, no git)
    return bool(entry["cached"])


def test_cache_hit_miss_and_invalidation(tmp_path: Path) -> None:
    project = copy_tree("project", tmp_path)
    output = project / "compiled" / "train.yaml"
    assert _cached(project) is False  # from [tool.kfp-ci], to its configured output
    assert "hello" in output.read_text()
    assert list((project / ".kfp-ci" / "cache").glob("*.json"))
    assert _cached(project) is True

    helpers = project / "pipes" / "helpers.py"
    helpers.write_text(helpers.read_text().replace("hello", "bonjour"))
    assert _cached(project) is False  # an imported local module changed
    assert "bonjour" in output.read_text()
    assert _cached(project) is True

    component = project / "pipes" / "greet.yaml"
    component.write_text(component.read_text().replace("alpine:3.19", "alpine:3.20"))
    assert _cached(project) is False  # a loaded component YAML changed
    assert "alpine:3.20" in output.read_text()

    assert _cached(project, "--pipeline-parameters", '{"text": "x"}') is False  # other options
    assert _cached(project, "--no-cache") is False
    output.unlink()
    assert _cached(project) is True  # a deleted output is rewritten from the cache
    assert "alpine:3.20" in output.read_text()


def test_check_fresh_stale_and_missing(tmp_path: Path) -> None:
    project = copy_tree("project", tmp_path)
    output = project / "compiled" / "train.yaml"
    result = kfp_ci(["compile", "--check"], project)
    assert result.exit_code == 1  # nothing committed yet
    assert "compiled/train.yaml is missing" in result.stdout
    assert not output.exists()  # --check touches nothing

    assert kfp_ci(["compile"], project).exit_code == 0
    result = kfp_ci(["compile", "--check", "--no-cache"], project)
    assert result.exit_code == 0, result.output
    assert "up to date" in result.stdout

    stale = output.read_text().replace("alpine:3.19", "alpine:3.18")
    output.write_text(stale)
    result = kfp_ci(["compile", "--check"], project)
    assert result.exit_code == 1
    assert "compiled/train.yaml is stale" in result.stdout
    assert "-        image: alpine:3.18" in result.stdout and "+        image: alpine:3.19" in result.stdout
    assert output.read_text() == stale


def test_cli_process_imports_neither_kfp_nor_user_code(tmp_path: Path) -> None:
    project = copy_tree("project", tmp_path)
    code = (
        "import sys\n"
        "from kfp_ci.cli import main\n"
        "try:\n    main(['compile'], prog_name='kfp-ci')\n"
        "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "leaked = [m for m in ('kfp', 'train', 'helpers') if m in sys.modules]\n"
        "assert not leaked, leaked\n"
        "print('clean')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "clean" in proc.stdout
    assert (project / "compiled" / "train.yaml").is_file()


def test_no_state_leaks_between_modules_with_the_same_names(tmp_path: Path) -> None:
    """Two pipeline.py files, each importing its own helpers.py, and one that patches kfp at import time."""
    for team, image in (("a", "alpine:3.1"), ("b", "alpine:3.2")):
        folder = tmp_path / team
        folder.mkdir()
        (folder / "helpers.py").write_text(f"IMAGE = {image!r}\n")
        patch = "dsl.PipelineTask.set_caching_options = lambda self, *a, **k: self\n" if team == "a" else ""
        (folder / "pipeline.py").write_text(
            "from helpers import IMAGE\nfrom kfp import dsl\n" + patch +
            "\n@dsl.container_component\ndef hi() -> dsl.ContainerSpec:\n"
            "    return dsl.ContainerSpec(image=IMAGE, command=['true'])\n\n"
            f"@dsl.pipeline(name='team-{team}')\ndef team_{team}() -> None:\n"
            "    hi().set_caching_options(False)\n"
        )
    result = kfp_ci(["compile", ".", "--format", "json", "-j", "2"], tmp_path)
    assert result.exit_code == 0, result.output
    a_yaml = (tmp_path / "a" / "team-a.yaml").read_text()
    b_yaml = (tmp_path / "b" / "team-b.yaml").read_text()
    assert "alpine:3.1" in a_yaml and "alpine:3.2" not in a_yaml
    assert "alpine:3.2" in b_yaml and "alpine:3.1" not in b_yaml
    assert "enableCache" not in b_yaml  # a's patch of kfp did not reach b: b's caching was really turned off
    assert "enableCache: true" in a_yaml


def test_image_tag_from_the_environment_is_part_of_the_cache_key(tmp_path: Path) -> None:
    src = tmp_path / "img.py"
    src.write_text(
        "import os\nfrom kfp import dsl\n\n"
        "@dsl.component(base_image=os.environ.get('KFP_CI_IMAGE', 'python:3.11'))\n"
        "def step() -> int:\n    return 1\n\n"
        "@dsl.pipeline(name='img')\ndef img():\n    step()\n"
    )
    first = kfp_ci(["compile", "--format", "json", str(src)], cwd=tmp_path, env={"KFP_CI_IMAGE": "repo/app:one"})
    assert first.exit_code == 0, first.output
    out = tmp_path / "img.yaml"
    assert "repo/app:one" in out.read_text()
    again = as_json(kfp_ci(["compile", "--format", "json", str(src)], cwd=tmp_path,
                           env={"KFP_CI_IMAGE": "repo/app:one"}))
    assert again["results"][0]["cached"] is True
    second = as_json(kfp_ci(["compile", "--format", "json", str(src)], cwd=tmp_path,
                            env={"KFP_CI_IMAGE": "repo/app:two"}))
    assert second["results"][0]["cached"] is False
    assert "repo/app:two" in out.read_text()
