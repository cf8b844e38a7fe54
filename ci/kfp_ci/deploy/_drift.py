"""``kfp-ci status --env all``: does what runs in each environment come from the repository?

For every environment in ``[tool.kfp-ci.environments]`` and every named pipeline in ``[tool.kfp-ci]``, the latest
version and the version each enabled recurring run uses are compared (canonical spec, :mod:`._spec`) with the
repository's compiled file:

* ``in sync``: the server holds what the compiled file holds;
* ``behind``: the server holds what the compiled file held at an earlier commit (the repository is newer: deploy
  or promote);
* ``drifted``: the server holds content that no commit of the compiled file made (an upload by hand, a version
  deployed from a dirty tree);
* ``not deployed``: no such pipeline there.

``--check`` exits 1 when anything drifted.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kfp_ci import _console, github
from kfp_ci._yaml import load_docs
from kfp_ci.auth import client_from_settings
from kfp_ci.config import PipelineConfig, Settings
from kfp_ci.deploy._api import Api
from kfp_ci.deploy._spec import comparable, fetch_spec, file_docs, spec_hash
from kfp_ci.errors import ConfigError

if TYPE_CHECKING:
    from kfp_ci.client import PipelineVersion

__all__ = ["DriftRow", "drift_command"]

HISTORY = 100  # commits of a compiled file searched for the server's content


@dataclass(frozen=True, slots=True)
class DriftRow:
    environment: str
    pipeline: str
    role: str
    """``latest`` or ``recurring <id>``"""
    version: str | None
    state: str
    """in sync | behind | drifted | not deployed | no compiled file"""
    detail: str = ""
    content_hash: str | None = None
    """Canonical hash of the spec the server holds (:func:`kfp_ci.deploy._spec.spec_hash`)."""


def _compiled_file(config: PipelineConfig, name: str) -> Path:
    return config.output or config.source_file.parent / f"{name}.yaml"


class _Repo:
    """The compiled file now and at each earlier commit that changed it, as spec documents."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._history: list[tuple[str, list[Any]]] | None = None

    def current(self) -> list[Any] | None:
        try:
            return file_docs(load_docs(self.path.read_bytes().decode("utf-8")))
        except (OSError, UnicodeDecodeError, ValueError):
            return None
        except Exception:  # not YAML: no comparable content
            return None

    def history(self) -> list[tuple[str, list[Any]]]:
        if self._history is None:
            self._history = []
            where = self.path.parent
            top = _git(where, "rev-parse", "--show-toplevel")
            if top:
                relative = self.path.resolve().relative_to(Path(top.strip()).resolve()).as_posix()
                for sha in (_git(where, "log", f"-n{HISTORY}", "--format=%H", "--", relative) or "").split():
                    text = _git(where, "show", f"{sha}:{relative}")
                    if text is None:
                        continue
                    try:
                        self._history.append((sha, file_docs(load_docs(text))))
                    except Exception:  # noqa: S112 - an unparseable old revision matches nothing
                        continue
        return self._history


def _git(cwd: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def classify(repo: _Repo, server: list[Any]) -> tuple[str, str]:
    """``(state, detail)`` of server spec documents against the repository's compiled file."""
    current = repo.current()
    if current is None:
        return "no compiled file", f"{repo.path} is missing: run kfp-ci compile"
    mine, theirs = comparable(current, server)
    if spec_hash(mine) == spec_hash(theirs):
        note = "" if len(current) == len(server) else "pipeline spec only (platform spec not on both sides)"
        return "in sync", note
    for sha, docs in repo.history():
        old, theirs = comparable(docs, server)
        if spec_hash(old) == spec_hash(theirs):
            return "behind", f"matches {repo.path.name} at commit {sha[:7]}; the repository is newer"
    return "drifted", f"sha256:{spec_hash(server)[:16]} matches no commit of {repo.path.name}"


def _environment_rows(name: str, settings: Settings) -> list[DriftRow]:
    rows: list[DriftRow] = []
    api = Api(client_from_settings(settings), settings.namespace)
    recurring: list[Any] | None = None
    for config in settings.pipelines:
        if not config.name:
            _console.warn(f"{config.source}: give it a name in [tool.kfp-ci] to check it for drift")
            continue
        repo = _Repo(_compiled_file(config, config.name))
        pipeline_id = api.find_pipeline(config.name, settings.namespace)
        if pipeline_id is None:
            rows.append(DriftRow(name, config.name, "latest", None, "not deployed"))
            continue
        checked: list[tuple[str, PipelineVersion]] = []
        latest = api.latest_version(pipeline_id)
        if latest is None:
            rows.append(DriftRow(name, config.name, "latest", None, "not deployed", "the pipeline has no version"))
            continue
        checked.append(("latest", latest))
        if recurring is None:
            recurring = list(api.client.list_recurring_runs(namespace=settings.namespace))
        for rr in recurring:
            if rr.pipeline_id != pipeline_id or rr.status != "ENABLED":
                continue
            role = f"recurring {rr.id}"
            if not rr.pipeline_version_id:
                checked.append((role + " (always latest)", latest))
            elif rr.pipeline_version_id == latest.id:
                checked.append((role, latest))
            else:
                checked.append((role, api.get_version(pipeline_id, rr.pipeline_version_id)))
        for role, version in checked:
            server = fetch_spec(api, version)
            state, detail = classify(repo, server)
            rows.append(DriftRow(name, config.name, role, version.name, state, detail, spec_hash(server)))
    return rows


def drift_command(settings: Settings, *, check: bool = False, output: str = "text",
                  load: Callable[..., Settings] | None = None) -> int:
    """``kfp-ci status --env all [--check]``; ``load(environment=NAME)`` builds one environment's settings."""
    if not settings.environments:
        raise ConfigError("--env all: [tool.kfp-ci] declares no environments ([tool.kfp-ci.environments.NAME])")
    if not settings.pipelines:
        raise ConfigError("--env all: [tool.kfp-ci] declares no pipelines to compare")
    from kfp_ci.config import load_settings

    loader = load or (lambda **kw: load_settings(**kw))
    rows: list[DriftRow] = []
    for name in settings.environments:
        rows.extend(_environment_rows(name, loader(environment=name)))
    drifted = [r for r in rows if r.state == "drifted"]
    if output == "json":
        _console.out(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        header = ("ENVIRONMENT", "PIPELINE", "WHAT", "VERSION", "STATE", "")
        table = [header] + [(r.environment, r.pipeline, r.role, r.version or "-", r.state, r.detail) for r in rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        for row in table:
            _console.out("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    summary = ["### kfp-ci drift", "", "| environment | pipeline | what | version | state |", "|---|---|---|---|---|"]
    summary += [f"| {r.environment} | {r.pipeline} | {r.role} | {r.version or '-'} | {r.state} |" for r in rows]
    github.append_summary("\n".join(summary))
    github.set_outputs({"drifted": "true" if drifted else "false"})
    if check and drifted:
        where = ", ".join(sorted({f"{r.pipeline} in {r.environment}" for r in drifted}))
        _console.error(f"drift: {where} holds content no commit made")
        return 1
    return 0
