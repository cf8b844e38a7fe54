"""``kfp-ci deploy``, ``run``, ``schedule``, ``wait`` and ``status``: the job a push to main runs.

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
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from kfp_ci import _console
from kfp_ci._api import Api, RecurringRuns, task_states
from kfp_ci._params import pipeline_inputs, resolve_parameters
from kfp_ci._plan import Target, apply, assess
from kfp_ci._record import Record, field, replace
from kfp_ci._report import DeployResult, dag_of, emit, iso, run_url
from kfp_ci._versioning import content_hash, describe_version, git_info, render_version_name
from kfp_ci._yaml import load_docs
from kfp_ci.config import PipelineConfig, Settings
from kfp_ci.errors import CompileError, ConfigError, KfpCiError, NotFound, RunFailed, TimeoutExpired, UsageError

if TYPE_CHECKING:
    from kfp_ci._cron import Schedule
    from kfp_ci._models import PipelineVersion, Run
    from kfp_ci.client import Client

__all__ = [
    "DeployOptions",
    "DeployResult",
    "deploy",
    "deploy_command",
    "load_target",
    "run_command",
    "schedule_command",
    "status_command",
    "wait_command",
    "wait_for_run",
]

DEFAULT_EXPERIMENT = "Default"


class DeployOptions(Record, frozen=False):
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
    poll_interval: float = 1.0
    poll_max: float = 10.0
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ targets
class _Source(Record, frozen=False):
    """A pipeline to deploy before compilation: a compiled file or a config entry/source to compile."""

    package: Path | None
    config: PipelineConfig | None = None


def _read_package(path: Path) -> tuple[bytes, list[Any]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    try:
        docs = load_docs(data.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not a compiled pipeline (YAML): {str(exc).splitlines()[0]}") from None
    if not docs or not isinstance(docs[0], dict) or not ("root" in docs[0] or "spec" in docs[0]):
        raise UsageError(f"{path} is not a compiled KFP pipeline (no 'root'); compile it with kfp-ci compile")
    return data, docs


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
) -> Target:
    """Read a compiled package and decide everything about it offline (name, version, typed params)."""
    cli_params = tuple(cli_params)
    data, docs = _read_package(package)
    spec: dict[str, Any] = docs[0]
    pipeline_name = name or str((spec.get("pipelineInfo") or {}).get("name") or package.stem)
    digest = content_hash(data, docs)
    params: dict[str, Any] = {}
    if need_params:
        params = resolve_parameters(pipeline_inputs(spec), cli_params, parameters,
                                    pipeline=f"pipeline '{pipeline_name}'")
    elif cli_params:
        raise UsageError("--param needs --run or a schedule (--schedule/--every)")
    info = git_info(git_path or package, want_count="{n}" in (version_template or ""))
    return Target(
        name=pipeline_name,
        package=package,
        spec=spec,
        content_hash=digest,
        version_name=render_version_name(version_template, info, digest, now=now),
        version_description=describe_version(info, digest),
        pipeline_description=description or (spec.get("pipelineInfo") or {}).get("description"),
        experiment=experiment,
        parameters=params,
    )


def _compile(config: PipelineConfig, settings: Settings) -> Path:
    """Compile a configured pipeline or a ``file.py[:function]`` source; the compiled YAML's path."""
    from kfp_ci.compile import compile_targets

    report = compile_targets([config], out_dir=settings.out_dir)
    for item in report.results:
        if not item.ok:
            error = item.error
            where = f" ({error.file}:{error.line})" if error is not None and error.file and error.line else ""
            message = error.message if error is not None else item.status
            raise CompileError(f"{config.source} did not compile{where}: {message}")
    results = [r for r in report.results if r.output is not None]
    if config.name:
        named = [r for r in results if r.pipeline_name == config.name]
        if len(named) == 1 and named[0].output is not None:
            return named[0].output
    if len(results) != 1 or results[0].output is None:
        raise UsageError(f"{config.source} holds {len(results)} pipelines; name one with file.py:function")
    return results[0].output


def _sources(names: Sequence[str], settings: Settings) -> list[_Source]:
    configured = {c.name: c for c in settings.pipelines if c.name}
    if not names:
        if not settings.pipelines:
            raise ConfigError("nothing to deploy: name compiled YAML files or sources, or declare "
                              "[[tool.kfp-ci.pipelines]] in pyproject.toml")
        return [_Source(None, c) for c in settings.pipelines]
    sources = []
    for name in names:
        path_part = name.rsplit(":", 1)[0] if name.count(":") and not Path(name).exists() else name
        if name in configured:
            sources.append(_Source(None, configured[name]))
        elif path_part.endswith((".yaml", ".yml", ".json")):
            if not Path(path_part).is_file():
                raise UsageError(f"{name}: no such file")
            resolved = Path(name).resolve()
            config = next((c for c in settings.pipelines if c.output and c.output == resolved), None) or \
                configured.get(resolved.stem)  # e.g. compiled with --out-dir: <name>.yaml
            sources.append(_Source(Path(name), config))
        elif path_part.endswith(".py"):
            if not Path(path_part).is_file():
                raise UsageError(f"{name}: no such file")
            func = name.rsplit(":", 1)[1] if name != path_part else ""
            source = str(Path(path_part).resolve()) + (f":{func}" if func else "")
            sources.append(_Source(None, PipelineConfig(source=source)))
        else:
            known = ", ".join(sorted(configured)) or "none declared"
            raise UsageError(f"{name}: not a compiled pipeline (.yaml), a source (.py[:function]) or a pipeline "
                             f"from [tool.kfp-ci] ({known})")
    return sources


# -------------------------------------------------------------------------------------------- client
def make_client(settings: Settings) -> Client:
    """The authenticated client for ``settings`` (auth module when present)."""
    if not settings.host:
        raise ConfigError("no KFP host: pass --host, set KFP_CI_HOST or host in [tool.kfp-ci]")
    if settings.auth == "none":  # nothing to log in with: skip the login machinery (and its HTML parser)
        from kfp_ci.client import Client

        verify: bool | str = str(settings.ca_bundle) if settings.ca_bundle else True
        if settings.insecure_skip_tls_verify:
            _console.warn("TLS certificates are not verified (--insecure-skip-tls-verify)")
            verify = False
        return Client(settings.host, namespace=settings.namespace, timeout=settings.timeout, verify=verify)
    from kfp_ci.auth import client_from_settings

    return client_from_settings(settings)


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
) -> Run:
    """Poll ``run_id`` to a terminal state with capped exponential backoff, reporting changes."""
    import random  # only commands that wait pay for it

    start = clock()
    delay = interval
    last_state: str | None = None
    last_tasks: dict[str, str] = {}
    while True:
        run = api.get_run(run_id)
        elapsed = clock() - start
        if run.state != last_state:
            progress(f"run {run_id}: {run.state} ({elapsed:.0f}s)")
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


def _duration(run: Run) -> float | None:
    if run.created_at and run.finished_at:
        return max(0.0, (run.finished_at - run.created_at).total_seconds())
    return None


# -------------------------------------------------------------------------------------------- deploy
def _schedule_of(options: DeployOptions, config: PipelineConfig | None) -> Schedule | None:
    cron = options.schedule or (config.schedule if config and not options.every else None)
    every = options.every or (config.every if config and not options.schedule else None)
    if not cron and not every:
        return None
    from kfp_ci._cron import parse_schedule

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
    """Deploy one prepared :class:`~kfp_ci._plan.Target` (see :func:`deploy`)."""
    log = _console.info
    result = DeployResult(pipeline=target.name, namespace=namespace, host=host, version_name=target.version_name,
                          content_hash=target.content_hash, dry_run=options.dry_run, dag=dag_of(target.spec))
    found = assess(api, target, namespace, probe_version=options.dry_run)
    result.plan.extend(found.steps)
    result.pipeline_id = found.pipeline_id
    result.pipeline_action = "found" if found.pipeline_id else "would create"
    result.version_action = "unchanged" if found.version else "would upload"
    result.version_id = found.version.id if found.version else None
    experiment = target.experiment or DEFAULT_EXPERIMENT
    if options.run or schedule:
        result.experiment = experiment
    if schedule is not None:
        from kfp_ci._cron import next_fire_times

        result.schedule = schedule.describe()
        result.next_fire = [iso(t) for t in next_fire_times(schedule)]
    if options.dry_run:
        if options.run:
            result.plan.append(f"start a run in experiment '{experiment}'" + (" and wait for it" if options.wait
                                                                                 else ""))
            result.run_state = "would start"
        if schedule is not None:
            result.plan.append(_schedule_plan(api, found.pipeline_id, target, result, schedule, latest, options,
                                              namespace))
        return result
    version = apply(api, found, namespace, result, log=log)
    experiment_id = api.experiment(experiment, namespace) if (options.run or schedule) else None
    result.experiment_id = experiment_id
    if options.run and experiment_id:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        run = api.create_run(experiment_id=experiment_id, name=f"{target.name} {version.name} {stamp}",
                             pipeline_id=version.pipeline_id, version_id=version.id, parameters=target.parameters)
        result.run_id = run.id
        result.run_url = run_url(host, run.id)
        result.run_state = run.state
        log(f"started run {run.id}: {result.run_url}")
    if schedule is not None and experiment_id and result.pipeline_id:
        _apply_schedule(api, result, target, schedule, latest, options, namespace, experiment_id, version.id)
    if options.wait and result.run_id:
        run = wait_for_run(api, result.run_id, timeout=options.timeout,
                           terminate_on_timeout=options.terminate_on_timeout, interval=options.poll_interval,
                           max_interval=options.poll_max)
        result.run_state = run.state
        result.run_duration = _duration(run)
        result.run_error = run.error
    return result


def _schedule_plan(api: Api, pipeline_id: str | None, target: Target, result: DeployResult, schedule: Schedule,
                   latest: bool, options: DeployOptions, namespace: str | None) -> str:
    from kfp_ci._schedule import ensure_recurring_run, fingerprint

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


def _apply_schedule(api: Api, result: DeployResult, target: Target, schedule: Schedule, latest: bool,
                    options: DeployOptions, namespace: str | None, experiment_id: str, version_id: str) -> None:
    from kfp_ci._schedule import ensure_recurring_run, fingerprint

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
    description = f"{target.name}: {schedule.describe()}, {which}. Managed by kfp-ci; do not edit."
    outcome = ensure_recurring_run(rr, pipeline_id=pipeline_id, name=f"{target.name} ({which})",
                                   description=description, spec=spec, keep_old=options.keep_old,
                                   log=_console.info)
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
) -> DeployResult:
    """Deploy a compiled pipeline with ``client`` (a :class:`kfp_ci.client.Client`).

    ``params`` are typed values (checked against the pipeline's inputs); ``cli_params`` are ``(name, text)``
    pairs typed like ``--param``. Does not raise when the run fails: look at ``result.run_state``.
    """
    options = DeployOptions(experiment=experiment, version_name=version_name, run=run, wait=wait, timeout=timeout,
                            terminate_on_timeout=terminate_on_timeout, schedule=schedule, every=every,
                            latest=latest, keep_old=keep_old, dry_run=dry_run)
    sched = _schedule_of(options, None)
    target = load_target(Path(package), name=name, version_template=version_name, experiment=experiment,
                         parameters=params, cli_params=cli_params, need_params=run or sched is not None)
    host = client.host
    api = Api(client, namespace)
    return deploy_target(api, target, options, namespace=namespace, host=host, schedule=sched, latest=latest)


def _gate(app: Any, settings: Settings, result: DeployResult, kwargs: Mapping[str, Any],
          config: PipelineConfig | None) -> None:
    require = tuple(kwargs.get("require") or ()) or (config.require if config else ())
    if not require and not kwargs.get("baseline") and not kwargs.get("max_regression"):
        return
    if not result.run_id or result.run_state != "SUCCEEDED":
        raise UsageError("--require/--baseline need --run --wait and a successful run")
    from kfp_ci import gate

    code = gate.gate_command(app, settings=settings, run_id=result.run_id, pipeline=result.pipeline,
                             require=require, baseline=kwargs.get("baseline"),
                             max_regression=tuple(kwargs.get("max_regression") or ()),
                             output=kwargs.get("output", "text"))
    if code:
        raise RunFailed(f"run {result.run_id} of {result.pipeline} did not pass the gate")


def deploy_command(app: Any, settings: Settings, **kwargs: Any) -> int:
    """``kfp-ci deploy`` (options as declared in :mod:`kfp_ci.cli`)."""
    options = DeployOptions(
        experiment=kwargs.get("experiment"),
        version_name=kwargs.get("version_name") or settings.version_name,
        params=tuple(kwargs.get("params") or ()),
        run=bool(kwargs.get("run_once")),
        wait=bool(kwargs.get("wait")),
        timeout=kwargs.get("wait_timeout"),
        terminate_on_timeout=bool(kwargs.get("terminate_on_timeout")),
        schedule=kwargs.get("schedule"),
        every=kwargs.get("every"),
        latest=bool(kwargs.get("latest")),
        keep_old=bool(kwargs.get("keep_old")),
        dry_run=bool(kwargs.get("dry_run")),
    )
    if options.wait and not options.run:
        raise UsageError("--wait needs --run")
    if (options.timeout or options.terminate_on_timeout) and not options.wait:
        raise UsageError("--timeout and --terminate-on-timeout need --run --wait")
    if kwargs.get("require") and not options.wait:
        raise UsageError("--require needs --run --wait")
    if options.schedule and options.every:
        raise UsageError("--schedule and --every are exclusive; give one")
    # Everything offline first: sources, compilation, parameters, schedules, version names.
    prepared: list[tuple[Target, Schedule | None, bool, PipelineConfig | None]] = []
    for source in _sources(tuple(kwargs.get("pipelines") or ()), settings):
        config = source.config
        package = source.package or _compile(config, settings)  # type: ignore[arg-type]
        schedule = _schedule_of(options, config)
        latest = options.latest or bool(config and config.latest)
        target = load_target(
            package,
            name=config.name if config else None,
            version_template=options.version_name,
            experiment=options.experiment or (config.experiment if config else None) or settings.experiment,
            description=config.description if config else None,
            parameters=config.parameters if config else None,
            cli_params=options.params,
            need_params=options.run or schedule is not None,
            git_path=config.source_file if config else None,  # the source's commit, wherever the YAML is
        )
        prepared.append((target, schedule, latest, config))
    client = make_client(settings)
    api = Api(client, settings.namespace)
    host = client.host
    results: list[DeployResult] = []
    failure: KfpCiError | None = None
    # Deploy (and start) every pipeline first, then wait for all the runs: they run side by side.
    start_only = replace(options, wait=False)
    for target, schedule, latest, _config in prepared:
        results.append(deploy_target(api, target, start_only, namespace=settings.namespace, host=host,
                                     schedule=schedule, latest=latest))
    if options.wait:
        deadline = None if options.timeout is None else time.monotonic() + options.timeout
        for result in results:
            if not result.run_id:
                continue
            left = None if deadline is None else max(0.001, deadline - time.monotonic())
            try:
                run = wait_for_run(api, result.run_id, timeout=left, terminate_on_timeout=options.terminate_on_timeout,
                                   interval=options.poll_interval, max_interval=options.poll_max)
            except TimeoutExpired as exc:
                failure = exc
                break
            result.run_state, result.run_duration, result.run_error = run.state, _duration(run), run.error
    emit(results, kwargs.get("output") or "text")
    if failure is not None:
        raise failure
    for result, (_t, _s, _l, config) in zip(results, prepared, strict=False):
        if options.wait and result.run_state != "SUCCEEDED":
            detail = f": {result.run_error}" if result.run_error else ""
            raise RunFailed(f"run {result.run_id} of {result.pipeline} ended {result.run_state}{detail}")
        if options.wait:
            _gate(app, settings, result, kwargs, config)
    return 0


# ----------------------------------------------------------------------------------------- run etc.
def _resolve_version(api: Api, pipeline: str, namespace: str | None, version: str) -> tuple[str, PipelineVersion]:
    found = api.find_pipeline(pipeline, namespace)
    if found is None:
        where = f" in namespace {namespace}" if namespace else ""
        raise UsageError(f"no pipeline named '{pipeline}'{where}: deploy it first (kfp-ci deploy)")
    resolved = api.latest_version(found) if version in ("latest", "") else api.find_version(found, version)
    if resolved is None:
        raise UsageError(f"pipeline '{pipeline}' has no version '{version}'")
    return found, resolved


def _spec_of(api: Api, version: PipelineVersion) -> dict[str, Any]:
    spec = version.pipeline_spec
    if spec is None:
        spec = api.get_version(version.pipeline_id, version.id).pipeline_spec
    if isinstance(spec, Mapping) and "pipeline_spec" in spec and "root" not in spec:
        spec = spec["pipeline_spec"]
    return dict(spec or {})


def run_command(app: Any, settings: Settings, **kwargs: Any) -> int:
    """``kfp-ci run PIPELINE``: run a deployed version."""
    wait = bool(kwargs.get("wait"))
    if (kwargs.get("wait_timeout") or kwargs.get("terminate_on_timeout")) and not wait:
        raise UsageError("--timeout and --terminate-on-timeout need --wait")
    name = kwargs["pipeline"]
    config = next((c for c in settings.pipelines if c.name == name), None)
    api = Api(make_client(settings), settings.namespace)
    namespace = settings.namespace
    pipeline_id, version = _resolve_version(api, name, namespace, kwargs.get("version") or "latest")
    params = resolve_parameters(pipeline_inputs(_spec_of(api, version)), kwargs.get("params") or (),
                                config.parameters if config else None, pipeline=f"pipeline '{name}'")
    experiment = kwargs.get("experiment") or (config.experiment if config else None) or settings.experiment
    experiment_id = api.experiment(experiment or DEFAULT_EXPERIMENT, namespace)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    run = api.create_run(experiment_id=experiment_id, name=kwargs.get("run_name") or f"{name} {version.name} {stamp}",
                         pipeline_id=pipeline_id, version_id=version.id, parameters=params)
    host = api.host
    result = DeployResult(pipeline=name, namespace=namespace, host=host, pipeline_id=pipeline_id,
                          version_name=version.name, version_id=version.id, experiment=experiment or DEFAULT_EXPERIMENT,
                          experiment_id=experiment_id, run_id=run.id, run_url=run_url(host, run.id),
                          run_state=run.state, dag=dag_of(_spec_of(api, version)))
    if wait:
        done = wait_for_run(api, run.id, timeout=kwargs.get("wait_timeout"),
                            terminate_on_timeout=bool(kwargs.get("terminate_on_timeout")))
        result.run_state, result.run_duration, result.run_error = done.state, _duration(done), done.error
    emit([result], kwargs.get("output") or "text")
    if wait and result.run_state != "SUCCEEDED":
        raise RunFailed(f"run {run.id} ended {result.run_state}" + (f": {result.run_error}" if result.run_error
                                                                    else ""))
    return 0


def schedule_command(app: Any, settings: Settings, **kwargs: Any) -> int:
    """``kfp-ci schedule PIPELINE``: only the recurring-run part of deploy."""
    name = kwargs["pipeline"]
    config = next((c for c in settings.pipelines if c.name == name), None)
    from kfp_ci._cron import next_fire_times, parse_schedule

    schedule = parse_schedule(kwargs.get("cron") or (config.schedule if config and not kwargs.get("every") else None),
                              kwargs.get("every") or (config.every if config and not kwargs.get("cron") else None))
    api = Api(make_client(settings), settings.namespace)
    namespace = settings.namespace
    pipeline_id, version = _resolve_version(api, name, namespace, kwargs.get("version") or "latest")
    params = resolve_parameters(pipeline_inputs(_spec_of(api, version)), kwargs.get("params") or (),
                                config.parameters if config else None, pipeline=f"pipeline '{name}'")
    experiment = (kwargs.get("experiment") or (config.experiment if config else None) or settings.experiment
                  or DEFAULT_EXPERIMENT)
    host = api.host
    target = Target(name=name, package=Path(), spec={}, content_hash="", version_name=version.name,
                    version_description="", experiment=experiment, parameters=params)
    latest = bool(kwargs.get("latest")) or bool(config and config.latest)
    result = DeployResult(pipeline=name, namespace=namespace, host=host, pipeline_id=pipeline_id,
                          version_name=version.name, version_id=version.id, experiment=experiment,
                          schedule=schedule.describe(), next_fire=[iso(t) for t in next_fire_times(schedule)],
                          dry_run=bool(kwargs.get("dry_run")))
    options = DeployOptions(keep_old=bool(kwargs.get("keep_old")), dry_run=bool(kwargs.get("dry_run")))
    if options.dry_run:
        result.plan.append(_schedule_plan(api, pipeline_id, target, result, schedule, latest, options, namespace))
    else:
        experiment_id = api.experiment(experiment, namespace)
        result.experiment_id = experiment_id
        _apply_schedule(api, result, target, schedule, latest, options, namespace, experiment_id, version.id)
    emit([result], kwargs.get("output") or "text")
    return 0


def wait_command(app: Any, settings: Settings, **kwargs: Any) -> int:
    """``kfp-ci wait RUN_ID``."""
    api = Api(make_client(settings), settings.namespace)
    run_id = kwargs["run_id"]
    try:
        run = wait_for_run(api, run_id, timeout=kwargs.get("wait_timeout"),
                           terminate_on_timeout=bool(kwargs.get("terminate_on_timeout")))
    except NotFound:
        raise UsageError(f"no run {run_id}") from None
    _print_runs([run], kwargs.get("output") or "text", host=api.host)
    if run.state != "SUCCEEDED":
        raise RunFailed(f"run {run_id} ended {run.state}" + (f": {run.error}" if run.error else ""))
    return 0


def _print_runs(runs: Sequence[Run], output: str, host: str) -> None:
    import json

    if output == "json":
        rows = [{"run_id": r.id, "name": r.name, "state": r.state, "created_at": r.created_at.isoformat()
                 if r.created_at else None, "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                 "duration": _duration(r), "error": r.error, "tasks": task_states(r), "url": run_url(host, r.id)}
                for r in runs]
        _console.out(json.dumps(rows[0] if len(rows) == 1 else rows, indent=2))
        return
    if not runs:
        _console.out("no runs")
        return
    header = ("RUN ID", "STATE", "CREATED (UTC)", "DURATION", "NAME")
    table = [header] + [
        (r.id, r.state, r.created_at.strftime("%Y-%m-%d %H:%M:%S") if r.created_at else "-",
         f"{_duration(r):.1f}s" if _duration(r) is not None else "-", r.name)
        for r in runs
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        _console.out("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())


def status_command(app: Any, settings: Settings, **kwargs: Any) -> int:
    """``kfp-ci status [RUN_ID]``: one run, or a table of recent runs."""
    api = Api(make_client(settings), settings.namespace)
    host = api.host
    output = kwargs.get("output") or "text"
    if kwargs.get("run_id"):
        try:
            run = api.get_run(kwargs["run_id"])
        except NotFound:
            raise UsageError(f"no run {kwargs['run_id']}") from None
        if output == "json":
            _print_runs([run], output, host)
            return 0
        _print_runs([run], output, host)
        for task, state in sorted(task_states(run).items()):
            _console.out(f"  task {task}: {state}")
        _console.out(f"  {run_url(host, run.id)}")
        if run.error:
            _console.out(f"  error: {run.error}")
        return 0
    experiment_id = None
    if kwargs.get("experiment"):
        experiment_id = api.find_experiment(kwargs["experiment"], settings.namespace)
        if experiment_id is None:
            raise UsageError(f"no experiment named '{kwargs['experiment']}'")
    limit = int(kwargs.get("limit") or 10)
    pipeline_id = None
    if kwargs.get("pipeline"):
        found = api.find_pipeline(kwargs["pipeline"], settings.namespace)
        if found is None:
            raise UsageError(f"no pipeline named '{kwargs['pipeline']}'")
        pipeline_id = found
    runs = api.list_runs(namespace=settings.namespace, experiment_id=experiment_id,
                         limit=limit if pipeline_id is None else 100)
    if pipeline_id is not None:
        runs = [r for r in runs if r.pipeline_id == pipeline_id][:limit]
    _print_runs(runs, output, host)
    return 0
