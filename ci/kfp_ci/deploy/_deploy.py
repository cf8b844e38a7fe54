"""Deploy one compiled pipeline: read it offline (:func:`load_target`), upload a version, run, schedule, wait.

Library use::

    from kfp_ci.client import Client
    from kfp_ci.deploy import deploy

    result = deploy(Client("http://127.0.0.1:8888"), "pipeline.yaml", run=True, wait=True)
    print(result.version_name, result.run_state)

Everything the user can get wrong (parameters, cron, version template, files) is checked before the first
request that changes anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kfp_ci import _console
from kfp_ci._package import Package, read_package
from kfp_ci.config import PipelineConfig
from kfp_ci.deploy._api import Api, RecurringRuns, task_states
from kfp_ci.deploy._cron import Schedule, next_fire_times, parse_schedule, refuse_empty
from kfp_ci.deploy._params import InputSpec, pipeline_inputs, resolve_parameters
from kfp_ci.deploy._plan import Target, apply, assess
from kfp_ci.deploy._report import DeployResult, dag_of, format_duration, iso, run_url
from kfp_ci.deploy._schedule import ensure_recurring_run, fingerprint
from kfp_ci.deploy._versioning import content_hash, describe_version, git_info, render_version_name
from kfp_ci.errors import ApiError, ConnectError, ServerError, TimeoutExpired, UsageError

if TYPE_CHECKING:
    from kfp_ci.client import Client, Run

__all__ = [
    "DEFAULT_EXPERIMENT",
    "DEFAULT_OUTAGE_WINDOW",
    "DeployOptions",
    "apply_schedule",
    "deploy",
    "deploy_target",
    "job_defaults",
    "load_target",
    "run_duration",
    "schedule_of",
    "schedule_plan",
    "wait_for_run",
]

DEFAULT_EXPERIMENT = "Default"
DEFAULT_OUTAGE_WINDOW = 300.0
"""Seconds of server or network outage ``--wait`` rides out before it gives up (exit 4)."""
_TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(slots=True)
class DeployOptions:
    """What ``kfp-ci deploy`` does besides uploading the version."""

    experiment: str | None = None
    version_name: str | None = None
    params: Sequence[tuple[str, str]] = ()
    run: bool = False
    wait: bool = False
    timeout: float | None = None
    terminate_on_timeout: bool = False
    schedule: str | None = None
    every: str | None = None
    latest: bool = False
    keep_old: bool = False
    dry_run: bool = False
    run_always: bool = False
    """start the run (with ``run``) even when the pipeline is unchanged and nothing was uploaded"""
    compare_latest: bool = True
    """compare the package with the pipeline's latest version: the same content hash uploads nothing"""
    compile: str = "auto"
    """auto | always | never: recompile a configured pipeline or upload its committed compiled file"""
    poll_interval: float = 1.0
    poll_max: float = 10.0
    outage_window: float = DEFAULT_OUTAGE_WINDOW
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ targets
_UPLOAD_DIR: list[Path] = []


def _upload_file(package: Package) -> Path:
    """The file to upload: the package itself, or (archive member, unwrapped PipelineJob) a private copy."""
    if not package.rewritten:
        return package.path
    if not _UPLOAD_DIR:
        import atexit
        import shutil
        import tempfile

        _UPLOAD_DIR.append(Path(tempfile.mkdtemp(prefix="kfp-ci-package-")))
        atexit.register(shutil.rmtree, _UPLOAD_DIR[0], True)
    folder = _UPLOAD_DIR[0] / content_hash(package.content, list(package.docs))[:16]
    folder.mkdir(exist_ok=True)
    path = folder / package.upload_name
    path.write_bytes(package.content)
    return path


def _argo_inputs(workflow: Mapping[str, Any]) -> dict[str, InputSpec]:
    """A KFP v1 workflow's run parameters (``spec.arguments.parameters``): strings, with their defaults."""
    params = (((workflow.get("spec") or {}).get("arguments") or {}).get("parameters")) or []
    return {str(p["name"]): InputSpec(name=str(p["name"]), type="STRING", default=p.get("value"),
                                      has_default="value" in p)
            for p in params if isinstance(p, dict) and p.get("name")}


def job_defaults(package: Package, inputs: Mapping[str, InputSpec]) -> dict[str, Any]:
    """A PipelineJob's parameter values, checked against the pipeline's inputs."""
    where = f"{package.path.name} runtimeConfig.parameterValues"
    known = ", ".join(sorted(inputs)) or "none"
    values: dict[str, Any] = {}
    for name, value in package.job_parameters.items():
        spec = inputs.get(name)
        if spec is None:
            raise UsageError(f"{where}: the pipeline has no input {name!r} (inputs: {known})")
        expected = _JOB_TYPES.get(spec.type, object)
        if spec.type == "NUMBER_INTEGER" and isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON tooling may write 3 as 3.0
        if not isinstance(value, expected) or (isinstance(value, bool) and spec.type != "BOOLEAN"):
            raise UsageError(f"{where}: {name}={value!r} does not match the input's type {spec.type}")
        values[name] = value
    return values


_JOB_TYPES: dict[str, type | tuple[type, ...]] = {
    "STRING": str, "NUMBER_INTEGER": int, "NUMBER_DOUBLE": (int, float), "BOOLEAN": bool, "LIST": list,
    "STRUCT": dict,
}


def load_target(
    package: Path,
    *,
    name: str | None = None,
    version_template: str | None = None,
    experiment: str | None = None,
    description: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    cli_params: Iterable[tuple[str, str]] = (),
    need_params: bool = False,
    git_path: Path | None = None,
    now: datetime | None = None,
    announce: Callable[[str], None] | None = None,
) -> Target:
    """Read a pipeline package and decide everything about it offline (name, version, typed params).

    Any package KFP's upload accepts (YAML, JSON, a .zip or .tar.gz holding one; a v2 spec, with or without a
    platform spec, or a v1 Argo workflow) and TFX/Vertex PipelineJob files, unwrapped (their parameter values are
    default run parameters, under ``parameters`` and ``cli_params``). ``announce`` hears what was found.
    """
    cli_params = tuple(cli_params)
    found = read_package(package)
    plain = found.kind == "v2" and found.member is None and found.platform_spec is None and \
        package.suffix.lower() in (".yaml", ".yml")
    if not plain:  # what kfp compiles needs no word; an archive, JSON, PipelineJob or Argo workflow gets one
        (announce or _console.info)(f"found {found.describe()}")
    spec: dict[str, Any] = dict(found.spec)
    pipeline_name = name or found.pipeline_name
    digest = content_hash(found.content, list(found.docs))
    params: dict[str, Any] = {}
    if need_params:
        inputs = _argo_inputs(spec) if found.kind == "argo" else pipeline_inputs(spec)
        defaults = {**job_defaults(found, inputs), **(parameters or {})}
        params = resolve_parameters(inputs, cli_params, defaults, pipeline=f"pipeline '{pipeline_name}'")
    elif cli_params:
        raise UsageError("--param needs --run or a schedule (--schedule/--every)")
    info = git_info(git_path or package, want_count="{n}" in (version_template or ""))
    return Target(
        name=pipeline_name,
        package=_upload_file(found),
        spec=spec,
        content_hash=digest,
        version_name=render_version_name(version_template, info, digest, now=now),
        version_description=describe_version(info, digest),
        pipeline_description=description or found.pipeline_description,
        experiment=experiment,
        parameters=params,
    )


# ---------------------------------------------------------------------------------------------- wait
def wait_for_run(
    api: Api,
    run_id: str,
    *,
    timeout: float | None = None,
    terminate_on_timeout: bool = False,
    interval: float = 1.0,
    max_interval: float = 10.0,
    progress: Callable[[str], None] = _console.info,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    outage_window: float = DEFAULT_OUTAGE_WINDOW,
) -> Run:
    """Poll ``run_id`` to a terminal state with capped exponential backoff, reporting changes.

    A server or network outage (5xx, 429, a reset or timed-out connection, each after the client's own retries)
    does not end the wait: one line says it began, polling backs off (``interval`` doubling up to
    ``max_interval``) and goes on until the server answers again. Only an outage longer than ``outage_window``
    seconds raises (:class:`~kfp_ci.errors.ServerError`, exit 4); ``timeout`` still applies throughout.
    """
    import random  # only commands that wait pay for it

    start = clock()
    delay = interval
    last_state: str | None = None
    last_tasks: dict[str, str] = {}
    outage_since: float | None = None
    outage_delay = interval
    while True:
        asked = clock()
        try:
            run = api.get_run(run_id)
        except (ConnectError, ApiError) as exc:
            if isinstance(exc, ApiError) and exc.status not in _TRANSIENT_STATUSES:
                raise
            now = clock()
            if outage_since is None:
                outage_since = asked  # the outage began with the poll that failed (its own retries included)
                progress(f"run {run_id}: the server is unavailable ({exc}); still waiting, for up to "
                         f"{outage_window:g}s of outage")
            down = now - outage_since
            if down >= outage_window:
                raise ServerError(f"run {run_id}: the server has been unavailable for {down:.0f}s, longer than the "
                                  f"outage window ({outage_window:g}s): {exc}",
                                  hint=f"the run may still be going on: kfp-ci wait {run_id}") from None
            if timeout is not None and now - start >= timeout:
                raise TimeoutExpired(f"run {run_id}: no answer from the server for {down:.0f}s when --timeout "
                                     f"({timeout:g}s) expired; the run may still be going on") from None
            pause = min(min(outage_delay, max_interval) * (0.9 + 0.2 * random.random()), outage_window - down)
            if timeout is not None:
                pause = min(pause, max(0.0, timeout - (now - start)))
            sleep(pause)
            outage_delay = min(outage_delay * 2, max_interval)
            continue
        outage_since, outage_delay = None, interval
        elapsed = clock() - start
        if run.state != last_state:
            # A finished run reports its own duration (created -> finished), the number the summary shows.
            took = run_duration(run) if run.done else None
            shown = format_duration(took) if took is not None else f"{elapsed:.0f}s"
            progress(f"run {run_id}: {run.state} ({shown})")
            last_state = run.state
        tasks = task_states(run)
        for task, state in sorted(tasks.items()):
            if last_tasks.get(task) != state:
                progress(f"  task {task}: {state}")
        last_tasks = tasks
        if run.done:
            return run
        if timeout is not None and elapsed >= timeout:
            if terminate_on_timeout:
                api.terminate_run(run_id)
                raise TimeoutExpired(f"run {run_id} still {run.state} after {timeout:g}s; terminated it")
            raise TimeoutExpired(f"run {run_id} still {run.state} after {timeout:g}s; it keeps running",
                                 hint="pass --terminate-on-timeout to stop it")
        pause = min(delay, max_interval)
        if timeout is not None:
            pause = max(0.0, min(pause, timeout - elapsed))
        sleep(pause * (0.9 + 0.2 * random.random()))
        delay = min(delay * 1.6, max_interval)


def run_duration(run: Run) -> float | None:
    if run.created_at and run.finished_at:
        return max(0.0, (run.finished_at - run.created_at).total_seconds())
    return None


# -------------------------------------------------------------------------------------------- deploy
def schedule_of(options: DeployOptions, config: PipelineConfig | None) -> Schedule | None:
    refuse_empty(options.schedule, options.every)
    cron = options.schedule or (config.schedule if config and not options.every else None)
    every = options.every or (config.every if config and not options.schedule else None)
    if not cron and not every:
        return None
    return parse_schedule(cron, every)


def deploy_target(
    api: Api,
    target: Target,
    options: DeployOptions,
    *,
    namespace: str | None,
    host: str,
    schedule: Schedule | None = None,
    latest: bool = False,
) -> DeployResult:
    """Deploy one prepared :class:`~kfp_ci.deploy._plan.Target` (see :func:`deploy`)."""
    log = _console.info
    result = DeployResult(pipeline=target.name, namespace=namespace, host=host, version_name=target.version_name,
                          content_hash=target.content_hash, dry_run=options.dry_run, dag=dag_of(target.spec))
    found = assess(api, target, namespace, probe_version=options.dry_run, compare_latest=options.compare_latest)
    result.plan.extend(found.steps)
    result.pipeline_id = found.pipeline_id
    result.pipeline_action = "found" if found.pipeline_id else "would create"
    result.version_action = "unchanged" if found.version else "would upload"
    result.version_id = found.version.id if found.version else None
    if found.version is not None:
        result.version_name = found.version.name
    experiment = target.experiment or DEFAULT_EXPERIMENT
    unchanged_skip = "pipeline unchanged (same content hash as the latest version); --run-always runs anyway"
    if options.run or schedule:
        result.experiment = experiment
    if schedule is not None:
        result.schedule = schedule.describe()
        result.next_fire = [iso(t) for t in next_fire_times(schedule)]
    if options.dry_run:
        if options.run and found.version is not None and not options.run_always:
            result.plan.append("no run: the pipeline is unchanged")
            result.run_skipped = unchanged_skip
        elif options.run:
            result.plan.append(f"start a run in experiment '{experiment}'" + (" and wait for it" if options.wait
                                                                                 else ""))
            result.run_state = "would start"
        if schedule is not None:
            result.plan.append(schedule_plan(api, found.pipeline_id, target, result, schedule, latest, options,
                                              namespace))
        return result
    version = apply(api, found, namespace, result, log=log)
    start_run = options.run and (result.version_action == "uploaded" or options.run_always)
    if options.run and not start_run:
        result.run_skipped = unchanged_skip
        log(f"pipeline '{target.name}' unchanged (version '{version.name}'): no run started")
    experiment_id = api.experiment(experiment, namespace) if (start_run or schedule) else None
    result.experiment_id = experiment_id
    if start_run and experiment_id:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        run = api.create_run(experiment_id=experiment_id, name=f"{target.name} {version.name} {stamp}",
                             pipeline_id=version.pipeline_id, version_id=version.id, parameters=target.parameters)
        result.run_id = run.id
        result.run_url = run_url(host, run.id)
        result.run_state = run.state
        log(f"started run {run.id}: {result.run_url}")
    if schedule is not None and experiment_id and result.pipeline_id:
        apply_schedule(api, result, target, schedule, latest, options, namespace, experiment_id, version.id)
    if options.wait and result.run_id:
        run = wait_for_run(api, result.run_id, timeout=options.timeout,
                           terminate_on_timeout=options.terminate_on_timeout, interval=options.poll_interval,
                           max_interval=options.poll_max, outage_window=options.outage_window)
        result.run_state = run.state
        result.run_duration = run_duration(run)
        result.run_error = run.error
    return result


def schedule_plan(api: Api, pipeline_id: str | None, target: Target, result: DeployResult, schedule: Schedule,
                   latest: bool, options: DeployOptions, namespace: str | None) -> str:
    if pipeline_id is None:
        result.recurring_action = "would create"
        return f"create a recurring run ({schedule.describe()})"
    experiment_id = api.find_experiment(result.experiment or DEFAULT_EXPERIMENT, namespace)
    version_id = None if latest else (result.version_id or "new")
    spec = fingerprint(pipeline_id=pipeline_id, version_id=version_id, schedule=schedule,
                       parameters=target.parameters, experiment_id=experiment_id)
    rr = RecurringRuns(api, namespace=namespace, experiment_id=experiment_id or "", pipeline_id=pipeline_id,
                       version_id=version_id, trigger=schedule.trigger(), parameters=target.parameters)
    outcome = ensure_recurring_run(rr, pipeline_id=pipeline_id, name="", description="", spec=spec,
                                   keep_old=options.keep_old, dry_run=True)
    result.recurring_action = outcome.action
    result.recurring_run_id = outcome.recurring_run_id
    return "recurring run: " + "; ".join(outcome.steps)


def apply_schedule(api: Api, result: DeployResult, target: Target, schedule: Schedule, latest: bool,
                    options: DeployOptions, namespace: str | None, experiment_id: str, version_id: str, *,
                    description: str | None = None) -> None:
    pipeline_id = result.pipeline_id or ""
    pinned: str | None = version_id
    if latest:
        if api.supports_always_latest():
            pinned = None
        else:
            _console.warn("--latest needs KFP >= 2.5 with the v2beta1 API; pinning the recurring run to "
                          f"version '{target.version_name}' instead")
    spec = fingerprint(pipeline_id=pipeline_id, version_id=pinned, schedule=schedule, parameters=target.parameters,
                       experiment_id=experiment_id)
    rr = RecurringRuns(api, namespace=namespace, experiment_id=experiment_id, pipeline_id=pipeline_id,
                       version_id=pinned, trigger=schedule.trigger(), parameters=target.parameters)
    which = "latest version" if pinned is None else f"version {target.version_name}"
    managed = f"{target.name}: {schedule.describe()}, {which}. Managed by kfp-ci; do not edit."
    outcome = ensure_recurring_run(rr, pipeline_id=pipeline_id, name=f"{target.name} ({which})",
                                   description=f"{description}\n{managed}" if description else managed, spec=spec,
                                   keep_old=options.keep_old, log=_console.info)
    result.recurring_action = outcome.action
    result.recurring_run_id = outcome.recurring_run_id


def deploy(
    client: Client,
    package: str | Path,
    *,
    namespace: str | None = None,
    name: str | None = None,
    experiment: str | None = None,
    version_name: str | None = None,
    params: Mapping[str, Any] | None = None,
    cli_params: Sequence[tuple[str, str]] = (),
    run: bool = False,
    wait: bool = False,
    timeout: float | None = None,
    terminate_on_timeout: bool = False,
    schedule: str | None = None,
    every: str | None = None,
    latest: bool = False,
    keep_old: bool = False,
    dry_run: bool = False,
    run_always: bool = False,
) -> DeployResult:
    """Deploy a pipeline package (see :func:`load_target`) with ``client`` (a :class:`kfp_ci.client.Client`).

    ``params`` are typed values (checked against the pipeline's inputs); ``cli_params`` are ``(name, text)``
    pairs typed like ``--param``. Does not raise when the run fails: look at ``result.run_state``. When the
    pipeline's latest version already holds this package nothing is uploaded and, unless ``run_always``, no
    run is started (``result.version_action == "unchanged"``, ``result.run_skipped`` says why).
    """
    options = DeployOptions(experiment=experiment, version_name=version_name, run=run, wait=wait, timeout=timeout,
                            terminate_on_timeout=terminate_on_timeout, schedule=schedule, every=every,
                            latest=latest, keep_old=keep_old, dry_run=dry_run, run_always=run_always)
    sched = schedule_of(options, None)
    target = load_target(Path(package), name=name, version_template=version_name, experiment=experiment,
                         parameters=params, cli_params=cli_params, need_params=run or sched is not None)
    host = client.host
    api = Api(client, namespace)
    return deploy_target(api, target, options, namespace=namespace, host=host, schedule=sched, latest=latest)
