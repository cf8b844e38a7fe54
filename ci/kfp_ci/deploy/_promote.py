"""``kfp-ci promote PIPELINE --from staging --to production``: the version that passed is the one that ships.

1. Find the version in the source environment: the latest, ``--version NAME`` or the version ``--run-id`` ran.
2. Find the evidence: a SUCCEEDED run of that version there that passes the pipeline's ``require`` gate (as the
   source environment configures it). Without one the promotion is refused, unless ``--force`` (printed, and put
   in the summary and the version description).
3. Fetch the spec the source server keeps (v2 ``pipeline_spec``; v1 the version's template): never recompile.
4. In the target: a version of the same name with the same canonical spec (:mod:`._spec`) is reused; one with other
   content is refused; else the fetched spec is uploaded under that name, its description recording where it came
   from (environment, version id, run id, content hash, and the commit the source version recorded).
5. Then what ``deploy`` does there: the target environment's schedule (one recurring run, swapped never without one),
   ``--run``/``--wait``, outputs and the job summary.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kfp_ci import _console, github
from kfp_ci.auth import client_from_settings
from kfp_ci.config import PipelineConfig, Settings
from kfp_ci.deploy._api import Api
from kfp_ci.deploy._deploy import DEFAULT_EXPERIMENT, DeployOptions, deploy_target, schedule_of
from kfp_ci.deploy._params import pipeline_inputs, resolve_parameters
from kfp_ci.deploy._plan import Target
from kfp_ci.deploy._report import DeployResult, human, markdown
from kfp_ci.deploy._spec import comparable, fetch_spec, spec_hash, spec_yaml
from kfp_ci.deploy._versioning import hash_from_description
from kfp_ci.errors import Conflict, GateFailed, KfpCiError, NotFound, RunFailed, UsageError
from kfp_ci.gate import evaluate_gate, parse_requirement

if TYPE_CHECKING:
    from kfp_ci.client import Client, PipelineVersion, Run

__all__ = ["Evidence", "promote_command"]

_COMMIT_RE = re.compile(r"\bcommit ([0-9a-f]{7,40})\b")
_RUNS_CHECKED = 50  # newest runs of the source namespace searched for a passing run of the version


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why the version may be promoted: the run that passed, or ``forced``."""

    run_id: str | None
    forced: bool
    note: str


def _config(settings: Settings, name: str) -> PipelineConfig | None:
    return next((c for c in settings.pipelines if c.name == name), None)


def _where(settings: Settings) -> str:
    return f"environment '{settings.environment}'" if settings.environment else "the default environment"


def _find_version(api: Api, settings: Settings, name: str, version: str | None,
                  run_id: str | None) -> tuple[str, PipelineVersion, Run | None]:
    pipeline_id = api.find_pipeline(name, settings.namespace)
    if pipeline_id is None:
        raise UsageError(f"no pipeline '{name}' in {_where(settings)} ({api.host}): deploy it there first")
    if run_id:
        try:
            run = api.get_run(run_id)
        except NotFound:
            raise UsageError(f"no run {run_id} in {_where(settings)}") from None
        if run.pipeline_id and run.pipeline_id != pipeline_id:
            raise UsageError(f"run {run_id} is not a run of pipeline '{name}' in {_where(settings)}")
        if not run.pipeline_version_id:
            raise UsageError(f"run {run_id} names no pipeline version (a run of an uploaded file?): cannot promote it")
        try:
            return pipeline_id, api.get_version(pipeline_id, run.pipeline_version_id), run
        except NotFound:
            raise UsageError(f"the version run {run_id} ran no longer exists in {_where(settings)}") from None
    found = api.find_version(pipeline_id, version) if version else api.latest_version(pipeline_id)
    if found is None:
        raise UsageError(f"pipeline '{name}' has no version " + (f"'{version}'" if version else "") +
                         f" in {_where(settings)}")
    return pipeline_id, found, None


def _gate_passes(client: Client, run_id: str, require: Sequence[str]) -> tuple[bool, str]:
    if not require:
        return True, "SUCCEEDED (no require gate configured)"
    try:
        result = evaluate_gate(client, run_id, require=require)
    except KfpCiError as exc:
        return False, str(exc)
    if result.passed:
        return True, "SUCCEEDED and passed " + ", ".join(require)
    return False, result.failure_message()


def find_evidence(api: Api, settings: Settings, version: PipelineVersion, run: Run | None,
                  require: Sequence[str], *, force: bool) -> Evidence:
    """The newest SUCCEEDED run of ``version`` that passes ``require`` (or the given ``run``); refuse without."""
    if run is not None:
        candidates = [run]
    else:
        runs = api.list_runs(namespace=settings.namespace, experiment_id=None, limit=_RUNS_CHECKED)
        candidates = [r for r in runs if r.pipeline_version_id == version.id]
    notes: list[str] = []
    for candidate in candidates:
        if candidate.state != "SUCCEEDED":
            notes.append(f"run {candidate.id} is {candidate.state}")
            continue
        passed, note = _gate_passes(api.client, candidate.id, require)
        if passed:
            _console.info(f"{_where(settings)}: run {candidate.id} of version '{version.name}' {note}")
            return Evidence(candidate.id, False, note)
        notes.append(f"run {candidate.id}: {note}")
    gate = f" that passed the gate ({', '.join(require)})" if require else ""
    seen = "; ".join(notes[:3]) if notes else "it has no runs there"
    message = (f"version '{version.name}' has no SUCCEEDED run in {_where(settings)}{gate}: {seen}")
    if force:
        _console.warn(f"--force: promoting without a passing run ({message})")
        return Evidence(None, True, f"forced: {message}")
    raise GateFailed(message + "; promote a version that passed, or pass --force")


def _description(source: Settings, host: str, version: PipelineVersion, evidence: Evidence, digest: str) -> str:
    parts = [f"promoted from {source.environment or 'default'} ({host}) version {version.name} ({version.id})"]
    parts.append(f"run {evidence.run_id}" if evidence.run_id else "forced without a passing run (--force)")
    commit = _COMMIT_RE.search(version.description or "")
    if commit:
        parts.append(f"commit {commit.group(1)}")
    parts.append(f"sha256:{digest}")
    parts.append("promoted by kfp-ci")
    return "; ".join(parts)


def promote_command(source: Settings, target: Settings, **kwargs: Any) -> int:
    """``kfp-ci promote`` (options as declared in :mod:`kfp_ci.cli`); ``source``/``target``: the two environments."""
    name: str = kwargs["pipeline"]
    version_name: str | None = kwargs.get("version")
    run_id: str | None = kwargs.get("run_id")
    force = bool(kwargs.get("force"))
    output = kwargs.get("output") or "text"
    options = DeployOptions(run=bool(kwargs.get("run_once")), wait=bool(kwargs.get("wait")),
                            timeout=kwargs.get("wait_timeout"), keep_old=bool(kwargs.get("keep_old")),
                            dry_run=bool(kwargs.get("dry_run")), params=tuple(kwargs.get("params") or ()))
    if version_name and run_id:
        raise UsageError("--version and --run-id both name the version: give one")
    if options.wait and not options.run:
        raise UsageError("--wait needs --run")
    if options.timeout and not options.wait:
        raise UsageError("--timeout needs --run --wait")
    if source.host and target.host and source.host.rstrip("/") == target.host.rstrip("/") and \
            source.namespace == target.namespace:
        raise UsageError(f"environments '{source.environment}' and '{target.environment}' are the same server and "
                         "namespace: nothing to promote")
    source_config, target_config = _config(source, name), _config(target, name)
    require = tuple(source_config.require) if source_config else ()
    for item in require:  # bad input before any request
        parse_requirement(item)
    schedule = None if kwargs.get("no_schedule") else schedule_of(options, target_config)
    latest = bool(target_config and target_config.latest)

    # --- source: the version, its evidence, its spec
    src_client = client_from_settings(source)
    src = Api(src_client, source.namespace)
    _pid, version, run = _find_version(src, source, name, version_name, run_id)
    evidence = find_evidence(src, source, version, run, require, force=force)
    docs = fetch_spec(src, version)
    digest = spec_hash(docs)
    _console.info(f"{_where(source)}: version '{version.name}' ({version.id}) sha256:{digest[:16]}")

    params: dict[str, Any] = {}
    if options.run or schedule is not None:
        params = resolve_parameters(pipeline_inputs(docs[0]), options.params,
                                    target_config.parameters if target_config else None,
                                    pipeline=f"pipeline '{name}'")
    elif options.params:
        raise UsageError("--param needs --run or a schedule in the target environment")

    # --- target: same name, same content, or refuse
    dst_client = client_from_settings(target)
    dst = Api(dst_client, target.namespace)
    recorded = digest
    dst_pipeline = dst.find_pipeline(name, target.namespace)
    existing = dst.find_version(dst_pipeline, version.name) if dst_pipeline else None
    if existing is not None:
        theirs = fetch_spec(dst, existing)
        mine, other = comparable(docs, theirs)
        if spec_hash(mine) != spec_hash(other):
            raise Conflict(409, f"{_where(target)} already has version '{version.name}' of '{name}' with other "
                           f"content (sha256:{spec_hash(theirs)[:16]}, promoting sha256:{digest[:16]}); "
                           "refusing to overwrite it", hint="promote another version, or remove that one there")
        recorded = hash_from_description(existing.description) or digest
        _console.info(f"{_where(target)}: version '{version.name}' already holds this spec; reusing it")

    experiment = ((target_config.experiment if target_config else None) or target.experiment
                  or DEFAULT_EXPERIMENT)
    spec = docs[0]
    with tempfile.TemporaryDirectory(prefix="kfp-ci-promote-") as tmp:
        package = Path(tmp) / f"{name}.yaml"
        package.write_bytes(spec_yaml(docs))
        plan = Target(name=name, package=package, spec=spec, content_hash=recorded, version_name=version.name,
                      version_description=_description(source, src.host, version, evidence, digest),
                      pipeline_description=(spec.get("pipelineInfo") or {}).get("description"),
                      experiment=experiment, parameters=params)
        options.experiment = experiment
        result = deploy_target(dst, plan, options, namespace=target.namespace, host=dst.host, schedule=schedule,
                               latest=latest)
    result.content_hash = digest
    _emit(result, source, version, evidence, digest, output)
    if options.wait and result.run_id and result.run_state != "SUCCEEDED":
        detail = f": {result.run_error}" if result.run_error else ""
        raise RunFailed(f"run {result.run_id} of {name} in {_where(target)} ended {result.run_state}{detail}")
    return 0


def _emit(result: DeployResult, source: Settings, version: PipelineVersion, evidence: Evidence, digest: str,
          output: str) -> None:
    promotion = {"from": source.environment, "from_version_id": version.id, "from_run_id": evidence.run_id,
                 "forced": evidence.forced, "evidence": evidence.note, "content_hash": digest}
    if output == "json":
        _console.out(json.dumps({**result.to_json(), "promotion": promotion}, indent=2, default=str))
    else:
        _console.out(f"promoted from  {source.environment} version {version.name} ({version.id})")
        _console.out(f"evidence       {'FORCED (--force): ' if evidence.forced else ''}"
                     f"{'run ' + evidence.run_id + ': ' if evidence.run_id else ''}{evidence.note}")
        _console.out(human(result))
    github.set_outputs({**result.outputs(), "content-hash": digest, "from-version-id": version.id,
                        "from-run-id": evidence.run_id, "forced": "true" if evidence.forced else "false"})
    lines = ["### kfp-ci promote", "",
             f"`{result.pipeline}` version `{version.name}` from **{source.environment}** "
             f"(version `{version.id}`) - content `sha256:{digest[:16]}`", ""]
    if evidence.forced:
        lines.append(f"**Forced** (`--force`): {evidence.note}")
    else:
        lines.append(f"Evidence: run `{evidence.run_id}` {evidence.note}")
    github.append_summary("\n".join(lines) + "\n\n" + markdown([result]).split("\n", 1)[1])
