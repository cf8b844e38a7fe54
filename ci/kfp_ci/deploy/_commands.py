"""``kfp-ci deploy``, ``run``, ``schedule``, ``wait`` and ``status``: the job a push to main runs.

Each command reads its sources and settings offline first (compiling when given a source or a config entry), then
talks to KFP through :mod:`kfp_ci.deploy._deploy`, and with ``--require`` hands the finished run to the gate.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kfp_ci import _console
from kfp_ci._package import PACKAGE_SUFFIXES, Package, package_stem, read_package
from kfp_ci.auth import client_from_settings
from kfp_ci.compile import compile_targets
from kfp_ci.config import PipelineConfig, Settings
from kfp_ci.deploy._api import Api, task_states
from kfp_ci.deploy._cron import Schedule, next_fire_times, parse_schedule, refuse_empty
from kfp_ci.deploy._deploy import (
    DEFAULT_EXPERIMENT,
    DEFAULT_OUTAGE_WINDOW,
    DeployOptions,
    apply_schedule,
    deploy_target,
    job_defaults,
    load_target,
    run_duration,
    schedule_of,
    schedule_plan,
    wait_for_run,
)
from kfp_ci.deploy._params import InputSpec, pipeline_inputs, resolve_parameters
from kfp_ci.deploy._plan import Target
from kfp_ci.deploy._report import DeployResult, dag_of, emit, format_duration, iso, run_url
from kfp_ci.errors import CompileError, ConfigError, KfpCiError, NotFound, RunFailed, TimeoutExpired, UsageError
from kfp_ci.gate import gate_command

if TYPE_CHECKING:
    from kfp_ci.client import PipelineVersion, Run

__all__ = ["deploy_command", "run_command", "schedule_command", "status_command", "wait_command"]


@dataclass(slots=True)
class _Source:
    """A pipeline to deploy before compilation: a compiled file or a config entry/source to compile."""

    package: Path | None
    config: PipelineConfig | None = None


def _compile(config: PipelineConfig, settings: Settings) -> Path:
    """Compile a configured pipeline or a ``file.py[:function]`` source; the compiled YAML's path."""
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


COMPILE_MODES = ("auto", "always", "never")


def _package_of(source: _Source, settings: Settings, mode: str) -> tuple[Path, bool]:
    """The compiled file to deploy and whether it was compiled now.

    ``auto``: a configured pipeline's committed ``output`` when that file exists (no kfp needed), else compile;
    ``always``: compile configured pipelines and sources; ``never``: never compile (a missing file is an error).
    A compiled file named on the command line is used as is in every mode.
    """
    if source.package is not None:
        return source.package, False
    config = source.config
    assert config is not None  # a _Source has a package or a config
    output = config.output
    if mode != "always" and output is not None and output.is_file():
        return output, False
    if mode == "never":
        what = f"its compiled file {_shown(output)} is missing" if output is not None else \
            "it declares no compiled file (output)"
        raise UsageError(f"--compile never: {config.name or config.source}: {what}",
                         hint="run kfp-ci compile and commit the output, or pass --compile auto")
    return _compile(config, settings), True


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


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
        elif path_part.lower().endswith(PACKAGE_SUFFIXES) or (Path(name).is_file() and not name.endswith(".py")):
            if not Path(path_part).is_file():
                raise UsageError(f"{name}: no such file")
            resolved = Path(name).resolve()
            config = next((c for c in settings.pipelines if c.output and c.output == resolved), None) or \
                configured.get(package_stem(resolved))  # e.g. compiled with --out-dir: <name>.yaml
            sources.append(_Source(Path(name), config))
        elif path_part.endswith(".py"):
            if not Path(path_part).is_file():
                raise UsageError(f"{name}: no such file")
            func = name.rsplit(":", 1)[1] if name != path_part else ""
            source = str(Path(path_part).resolve()) + (f":{func}" if func else "")
            sources.append(_Source(None, PipelineConfig(source=source)))
        else:
            known = ", ".join(sorted(configured)) or "none declared"
            raise UsageError(f"{name}: not a pipeline package (.yaml, .json, .zip, .tar.gz), a source "
                             f"(.py[:function]) or a pipeline from [tool.kfp-ci] ({known})")
    return sources


def _gate(settings: Settings, result: DeployResult, kwargs: Mapping[str, Any],
          config: PipelineConfig | None) -> None:
    require = tuple(kwargs.get("require") or ()) or (config.require if config else ())
    if not require and not kwargs.get("baseline") and not kwargs.get("max_regression"):
        return
    if not result.run_id or result.run_state != "SUCCEEDED":
        raise UsageError("--require/--baseline need --run --wait and a successful run")
    code = gate_command(settings=settings, run_id=result.run_id, pipeline=result.pipeline,
                             require=require, baseline=kwargs.get("baseline"),
                             max_regression=tuple(kwargs.get("max_regression") or ()),
                             output=kwargs.get("output", "text"))
    if code:
        raise RunFailed(f"run {result.run_id} of {result.pipeline} did not pass the gate")


def deploy_command(settings: Settings, **kwargs: Any) -> int:
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
        run_always=bool(kwargs.get("run_always")),
        compile=kwargs.get("compile_mode") or "auto",
    )
    if options.compile not in COMPILE_MODES:
        raise UsageError(f"--compile must be one of {', '.join(COMPILE_MODES)}, not '{options.compile}'")
    if options.run_always and not options.run:
        raise UsageError("--run-always needs --run")
    if kwargs.get("outage_window") is not None:
        options.outage_window = float(kwargs["outage_window"])
    if options.wait and not options.run:
        raise UsageError("--wait needs --run")
    if (options.timeout or options.terminate_on_timeout) and not options.wait:
        raise UsageError("--timeout and --terminate-on-timeout need --run --wait")
    if kwargs.get("outage_window") is not None and not options.wait:
        raise UsageError("--outage-window needs --run --wait")
    if kwargs.get("require") and not options.wait:
        raise UsageError("--require needs --run --wait")
    if options.schedule and options.every:
        raise UsageError("--schedule and --every are exclusive; give one")
    # Everything offline first: sources, compilation, parameters, schedules, version names.
    prepared: list[tuple[Target, Schedule | None, bool, PipelineConfig | None]] = []
    packages: list[tuple[str, str]] = []
    sources = _sources(tuple(kwargs.get("pipelines") or ()), settings)
    if (kwargs.get("name") or kwargs.get("description")) and len(sources) != 1:
        raise UsageError(f"--name and --description name one pipeline; this deploys {len(sources)}")
    for source in sources:
        config = source.config
        package, compiled = _package_of(source, settings, options.compile)
        packages.append((_shown(package), "compiled now" if compiled else
                         "as given" if source.package is not None else "committed file, not recompiled"))
        schedule = schedule_of(options, config)
        latest = options.latest or bool(config and config.latest)
        target = load_target(
            package,
            name=kwargs.get("name") or (config.name if config else None),
            version_template=options.version_name,
            experiment=options.experiment or (config.experiment if config else None) or settings.experiment,
            description=kwargs.get("description") or (config.description if config else None),
            parameters=config.parameters if config else None,
            cli_params=options.params,
            need_params=options.run or schedule is not None,
            git_path=config.source_file if config else None,  # the source's commit, wherever the YAML is
        )
        prepared.append((target, schedule, latest, config))
    client = client_from_settings(settings)
    api = Api(client, settings.namespace)
    host = client.host
    results: list[DeployResult] = []
    failure: KfpCiError | None = None
    # Deploy (and start) every pipeline first, then wait for all the runs: they run side by side.
    start_only = replace(options, wait=False)
    for (target, schedule, latest, _config), (shown, origin) in zip(prepared, packages, strict=True):
        result = deploy_target(api, target, start_only, namespace=settings.namespace, host=host,
                               schedule=schedule, latest=latest)
        result.package, result.compiled, result.package_origin = shown, origin == "compiled now", origin
        results.append(result)
    if options.wait:
        deadline = None if options.timeout is None else time.monotonic() + options.timeout
        for result in results:
            if not result.run_id:
                continue
            left = None if deadline is None else max(0.001, deadline - time.monotonic())
            try:
                run = wait_for_run(api, result.run_id, timeout=left, terminate_on_timeout=options.terminate_on_timeout,
                                   interval=options.poll_interval, max_interval=options.poll_max,
                                   outage_window=options.outage_window)
            except TimeoutExpired as exc:
                failure = exc
                break
            result.run_state, result.run_duration, result.run_error = run.state, run_duration(run), run.error
    emit(results, kwargs.get("output") or "text")
    if failure is not None:
        raise failure
    for result, (_t, _s, _l, config) in zip(results, prepared, strict=False):
        if result.run_skipped:
            continue  # unchanged: no run to judge
        if options.wait and result.run_state != "SUCCEEDED":
            detail = f": {result.run_error}" if result.run_error else ""
            raise RunFailed(f"run {result.run_id} of {result.pipeline} ended {result.run_state}{detail}")
        if options.wait:
            _gate(settings, result, kwargs, config)
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


def _named(settings: Settings, kwargs: Mapping[str, Any]) -> tuple[str, PipelineConfig | None, Package | None]:
    """PIPELINE of ``run``/``schedule``: a name, or a package file (its pipeline, named by ``--name`` or itself)."""
    given = str(kwargs["pipeline"])
    path = Path(given)
    configured = {c.name: c for c in settings.pipelines if c.name}
    if given not in configured and path.is_file():
        package = read_package(path)
        resolved = path.resolve()
        config = next((c for c in settings.pipelines if c.output and c.output == resolved), None)
        name = kwargs.get("name") or (config.name if config else None) or package.pipeline_name
        return name, config, package
    if kwargs.get("name"):
        raise UsageError(f"--name names the pipeline of a package file; {given!r} is a pipeline name already")
    return given, configured.get(given), None


def _defaults(package: Package | None, inputs: Mapping[str, InputSpec],
              config: PipelineConfig | None) -> dict[str, Any]:
    """Default run parameters: a PipelineJob's values, then [tool.kfp-ci]'s."""
    return {**(job_defaults(package, inputs) if package else {}), **(config.parameters if config else {})}


def run_command(settings: Settings, **kwargs: Any) -> int:
    """``kfp-ci run PIPELINE``: run a deployed version."""
    wait = bool(kwargs.get("wait"))
    if (kwargs.get("wait_timeout") or kwargs.get("terminate_on_timeout")) and not wait:
        raise UsageError("--timeout and --terminate-on-timeout need --wait")
    if kwargs.get("outage_window") is not None and not wait:
        raise UsageError("--outage-window needs --wait")
    name, config, package = _named(settings, kwargs)
    api = Api(client_from_settings(settings), settings.namespace)
    namespace = settings.namespace
    pipeline_id, version = _resolve_version(api, name, namespace, kwargs.get("version") or "latest")
    inputs = pipeline_inputs(_spec_of(api, version))
    params = resolve_parameters(inputs, kwargs.get("params") or (), _defaults(package, inputs, config),
                                pipeline=f"pipeline '{name}'")
    experiment = kwargs.get("experiment") or (config.experiment if config else None) or settings.experiment
    experiment_id = api.experiment(experiment or DEFAULT_EXPERIMENT, namespace)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    run = api.create_run(experiment_id=experiment_id, name=kwargs.get("run_name") or f"{name} {version.name} {stamp}",
                         pipeline_id=pipeline_id, version_id=version.id, parameters=params,
                         description=kwargs.get("description"))
    host = api.host
    result = DeployResult(pipeline=name, namespace=namespace, host=host, pipeline_id=pipeline_id,
                          version_name=version.name, version_id=version.id, version_action="deployed",
                          experiment=experiment or DEFAULT_EXPERIMENT,
                          experiment_id=experiment_id, run_id=run.id, run_url=run_url(host, run.id),
                          run_state=run.state, dag=dag_of(_spec_of(api, version)))
    if wait:
        done = wait_for_run(api, run.id, timeout=kwargs.get("wait_timeout"),
                            terminate_on_timeout=bool(kwargs.get("terminate_on_timeout")),
                            outage_window=kwargs.get("outage_window") or DEFAULT_OUTAGE_WINDOW)
        result.run_state, result.run_duration, result.run_error = done.state, run_duration(done), done.error
    emit([result], kwargs.get("output") or "text",
         title=f"kfp-ci run: retraining `{name}` (version `{version.name}`)")
    if wait and result.run_state != "SUCCEEDED":
        raise RunFailed(f"run {run.id} ended {result.run_state}" + (f": {result.run_error}" if result.run_error
                                                                    else ""))
    return 0


def schedule_command(settings: Settings, **kwargs: Any) -> int:
    """``kfp-ci schedule PIPELINE``: only the recurring-run part of deploy."""
    name, config, package = _named(settings, kwargs)
    refuse_empty(kwargs.get("cron"), kwargs.get("every"))
    schedule = parse_schedule(kwargs.get("cron") or (config.schedule if config and not kwargs.get("every") else None),
                              kwargs.get("every") or (config.every if config and not kwargs.get("cron") else None))
    api = Api(client_from_settings(settings), settings.namespace)
    namespace = settings.namespace
    pipeline_id, version = _resolve_version(api, name, namespace, kwargs.get("version") or "latest")
    inputs = pipeline_inputs(_spec_of(api, version))
    params = resolve_parameters(inputs, kwargs.get("params") or (), _defaults(package, inputs, config),
                                pipeline=f"pipeline '{name}'")
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
        result.plan.append(schedule_plan(api, pipeline_id, target, result, schedule, latest, options, namespace))
    else:
        experiment_id = api.experiment(experiment, namespace)
        result.experiment_id = experiment_id
        apply_schedule(api, result, target, schedule, latest, options, namespace, experiment_id, version.id,
                       description=kwargs.get("description"))
    emit([result], kwargs.get("output") or "text")
    return 0


def wait_command(settings: Settings, **kwargs: Any) -> int:
    """``kfp-ci wait RUN_ID``."""
    api = Api(client_from_settings(settings), settings.namespace)
    run_id = kwargs["run_id"]
    try:
        run = wait_for_run(api, run_id, timeout=kwargs.get("wait_timeout"),
                           terminate_on_timeout=bool(kwargs.get("terminate_on_timeout")),
                           outage_window=kwargs.get("outage_window") or DEFAULT_OUTAGE_WINDOW)
    except NotFound:
        raise UsageError(f"no run {run_id}") from None
    _print_runs([run], kwargs.get("output") or "text", host=api.host)
    if run.state != "SUCCEEDED":
        raise RunFailed(f"run {run_id} ended {run.state}" + (f": {run.error}" if run.error else ""))
    return 0


def _print_runs(runs: Sequence[Run], output: str, host: str) -> None:
    if output == "json":
        rows = [{"run_id": r.id, "name": r.name, "state": r.state, "created_at": r.created_at.isoformat()
                 if r.created_at else None, "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                 "duration": run_duration(r), "error": r.error, "tasks": task_states(r), "url": run_url(host, r.id)}
                for r in runs]
        _console.out(json.dumps(rows[0] if len(rows) == 1 else rows, indent=2))
        return
    if not runs:
        _console.out("no runs")
        return
    header = ("RUN ID", "STATE", "CREATED (UTC)", "DURATION", "NAME")
    table = [header] + [
        (r.id, r.state, r.created_at.strftime("%Y-%m-%d %H:%M:%S") if r.created_at else "-",
         format_duration(run_duration(r)), r.name)
        for r in runs
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        _console.out("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())


def status_command(settings: Settings, **kwargs: Any) -> int:
    """``kfp-ci status [RUN_ID]``: one run, or a table of recent runs."""
    api = Api(client_from_settings(settings), settings.namespace)
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
