"""The compiler driver: targets -> found pipelines -> cache -> zygote worker -> outputs (or a freshness check).

It finds pipeline functions by reading the sources (AST), answers what it can from the cache (``.kfp-ci/cache/``),
and hands the rest to a zygote process (:mod:`kfp_ci.compile._worker`) that imports kfp once and forks one child
per source module. Every output's bytes equal what ``kfp dsl compile --py FILE --function F --output OUT`` writes
with the same kfp, up to what :mod:`._compare` ignores (kfp's clock stamps; the header's dict-default key order,
which kfp-ci writes in the source's order).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfp_ci.compile._cache import Cache, file_digest
from kfp_ci.compile._compare import canonical, sdk_version_of
from kfp_ci.compile._discover import Found, ScanError, discover, may_hold_pipelines, scan_file
from kfp_ci.compile._report import hint_for
from kfp_ci.compile._results import CompileReport, CompileResult, PipelineError, Status, read_output, write_output
from kfp_ci.config import PipelineConfig, Settings
from kfp_ci.errors import CompileError, UsageError

__all__ = ["Target", "compile_targets", "repo_root"]

Target = PipelineConfig | Path | str

_WORKER = Path(__file__).with_name("_worker.py")
_DIFF_LINES = 40
_TRUE = {"1", "true", "t", "yes", "y", "on"}


@dataclass(slots=True)
class _Job:
    """One source module and the pipeline functions to compile from it.

    ``discover``: compile what kfp sees in the module after importing it (``found`` are hints from the source);
    else exactly ``found``. ``explicit``: the file was named on its own (no pipeline in it is an error).
    """

    source: Path
    found: list[Found]
    config: dict[str, PipelineConfig] = field(default_factory=dict)
    suffix: dict[str, str] = field(default_factory=dict)
    cache_key: str = ""
    digest: str | None = None
    discover: bool = False
    explicit: bool = False
    only: str | None = None
    source_config: PipelineConfig | None = None
    """A ``[tool.kfp-ci]`` entry naming the whole file (no ``:function``): it applies to what kfp finds in it."""


# ------------------------------------------------------------------------------------------- targets
def _add(jobs: dict[Path, _Job], source: Path, found: Iterable[Found], *, discover: bool,
         explicit: bool = False) -> _Job:
    job = jobs.get(source)
    if job is None:
        job = jobs[source] = _Job(source, [], discover=discover, explicit=explicit)
    else:
        job.discover = job.discover or discover
        job.explicit = job.explicit or explicit
    names = {f.function for f in job.found}
    job.found.extend(f for f in found if f.function not in names)
    return job


def _targets_to_jobs(targets: Iterable[Target], function: str | None, root: Path) -> tuple[
        dict[Path, _Job], list[ScanError], dict[tuple[Path, str], PipelineConfig]]:
    jobs: dict[Path, _Job] = {}
    errors: list[ScanError] = []
    configs: dict[tuple[Path, str], PipelineConfig] = {}
    paths: list[Path] = []
    for target in targets:
        if isinstance(target, PipelineConfig):
            source = target.source_file.resolve()
            if not source.is_file():
                raise UsageError(f"pipeline source {source} does not exist (check [tool.kfp-ci] source)")
            scanned = scan_file(source)
            if isinstance(scanned, ScanError):
                errors.append(scanned)
                continue
            wanted = target.function or function
            if wanted:
                picked = [f for f in scanned if f.function == wanted] or [Found(source, wanted,
                                                                                _def_line(source, wanted))]
                configs[(source, wanted)] = target
                _add(jobs, source, picked, discover=False)
            else:
                if not scanned and not may_hold_pipelines(source):
                    raise UsageError(f"no @dsl.pipeline function in {source}; name one with file.py:function")
                for item in scanned:
                    configs[(source, item.function)] = target
                _add(jobs, source, scanned, discover=True, explicit=True).source_config = target
            continue
        text = str(target)
        path = Path(text)
        if not path.exists() and ":" in text:
            head, _, func = text.rpartition(":")
            if Path(head).is_file() and func.isidentifier():
                source = Path(head).resolve()
                scanned = scan_file(source)
                if isinstance(scanned, ScanError):
                    errors.append(scanned)
                    continue
                if function is not None and func != function:
                    continue
                picked = [f for f in scanned if f.function == func] or [Found(source, func, _def_line(source, func))]
                _add(jobs, source, picked, discover=False)
                continue
            if func.isidentifier() and head.endswith(".py"):
                raise UsageError(f"{head}: no such file (in {text!r}, the file.py:function form)")
        if path.is_file():  # named alone: import it and take kfp's answer (unless it imports nothing at all)
            scanned, scan_errors = discover([path], roots=[root])
            errors.extend(scan_errors)
            if scan_errors or not (scanned or may_hold_pipelines(path)):
                continue
            hints = [f for f in scanned if function is None or f.function == function]
            _add(jobs, path.resolve(), hints, discover=True, explicit=True)
            continue
        paths.append(path)
    if paths:
        more, more_errors = discover(paths, roots=[root])
        for item in more:
            if function is None or item.function == function:
                _add(jobs, item.source, [item], discover=True)
        errors.extend(more_errors)
    return jobs, errors, configs


def _def_line(source: Path, function: str) -> int:
    try:
        for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
            if re.match(rf"\s*(async\s+)?def\s+{re.escape(function)}\b", line):
                return number
    except OSError:
        pass
    return 1


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "pipeline"


def _suffix(config: PipelineConfig | None, out_dir: Path | None) -> str:
    if config is not None and config.output is not None and out_dir is None:
        return config.output.suffix or ".yaml"
    return ".yaml"


def _output_for(item: Found, config: PipelineConfig | None, out_dir: Path | None, default_dir: Path | None,
                pipeline_name: str, layout: str = "flat", root: Path | None = None) -> Path:
    """``--out-dir``/<name>.yaml, else the configured output, else [tool.kfp-ci] out-dir, else next to the source.

    With ``layout="mirror"`` an output directory holds one directory per source file, at the source's path
    relative to the repository root without ``.py`` (``out/pipelines/train/<name>.yaml``): no two sources collide.
    """
    name = _safe_name((config.name if config else None) or pipeline_name)
    base = out_dir if out_dir is not None else (default_dir if config is None or config.output is None else None)
    if base is not None and layout == "mirror":
        source = item.source.with_suffix("")
        try:
            relative = source.relative_to(root) if root is not None else Path(*source.parts[1:])
        except ValueError:
            relative = Path(*source.parts[1:])
        return (base / relative / f"{name}.yaml").resolve()
    if out_dir is not None:
        return (out_dir / f"{name}.yaml").resolve()
    if config is not None and config.output is not None:
        return config.output
    return ((default_dir or item.source.parent) / f"{name}.yaml").resolve()


def repo_root() -> Path:
    """The repository root paths are reported against: ``GITHUB_WORKSPACE`` on a runner, else the git top level
    of the current directory, else the current directory."""
    workspace = os.environ.get("GITHUB_WORKSPACE")
    if workspace and Path(workspace).is_dir():
        return Path(workspace).resolve()
    try:
        out = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, timeout=10,
                             check=False)
    except (OSError, subprocess.SubprocessError):
        out = None
    if out is not None and out.returncode == 0 and out.stdout.strip():
        return Path(out.stdout.strip()).resolve()
    return Path.cwd().resolve()


# ------------------------------------------------------------------------------------------- the SDK
def _python() -> str:
    return os.environ.get("KFP_CI_PYTHON") or sys.executable


def _sdk_version(python: str) -> str | None:
    """kfp's version in ``python`` without importing kfp (from its installed metadata)."""
    if python == sys.executable:
        for entry in sys.path:  # fast path: the dist-info directory's name carries the version
            try:
                names = os.listdir(entry or ".")
            except OSError:
                continue
            for name in names:
                if name.startswith("kfp-") and name[4:5].isdigit() and name.endswith(".dist-info"):
                    return name[len("kfp-"):-len(".dist-info")]
        from importlib import metadata

        try:
            return metadata.version("kfp")
        except metadata.PackageNotFoundError:
            return None
    probe = "import importlib.metadata as m\ntry: print(m.version('kfp'))\nexcept Exception: print('')"
    try:
        out = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        raise UsageError(f"cannot run the compiling interpreter {python} (KFP_CI_PYTHON): {exc.strerror}") from None
    return out.stdout.strip() or None


def _project_root(settings: Settings | None) -> Path:
    if settings is not None and settings.project_root is not None:
        return settings.project_root.resolve()
    return Path.cwd().resolve()


def _worker_env() -> dict[str, str]:
    """The compiling processes' environment: ours, without ``PYTHONSAFEPATH`` (kfp imports a module from its
    directory)."""
    env = dict(os.environ)
    env.pop("PYTHONSAFEPATH", None)
    return env


def _run_zygote(python: str, jobs: list[_Job], opts: dict[str, Any], parallel: int, timeout: float,
                workdir: Path, env: dict[str, str]) -> dict[str, Any]:
    request = {
        "workdir": str(workdir),
        "opts": opts,
        "parallel": parallel,
        "timeout": timeout,
        "jobs": [
            {"source": str(job.source), "discover": job.discover, "only": job.only,
             "targets": [{"function": f.function, "line": f.line, "suffix": job.suffix.get(f.function, ".yaml")}
                         for f in job.found]}
            for job in jobs
        ],
    }
    request_path = workdir / "request.json"
    result_path = workdir / "result.json"
    request_path.write_text(json.dumps(request), encoding="utf-8")
    limit = timeout * (len(jobs) // max(parallel, 1) + 2) + 120
    try:
        proc = subprocess.Popen([python, str(_WORKER), str(request_path), str(result_path)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    except OSError as exc:
        raise UsageError(f"cannot run the compiling interpreter {python}: {exc.strerror}") from None
    try:
        stdout, stderr = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise CompileError(f"the compiler process ({python}) did not finish within {limit:g} s") from None
    except BaseException:
        _kill_group(proc)
        raise
    if proc.returncode != 0 or not result_path.exists():
        tail = (stderr or stdout).strip().splitlines()[-1:] or ["no output"]
        raise CompileError(f"the compiler process ({python}) failed with exit code {proc.returncode}: {tail[0]}")
    answer: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
    if answer.get("error"):
        raise UsageError(str(answer["error"]))
    return answer


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """Stop the zygote: SIGTERM first (it kills its children's process groups), then its whole group."""
    import signal

    try:
        proc.terminate()
        proc.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(proc.pid, getattr(signal, "SIGKILL", signal.SIGTERM))
    except (OSError, AttributeError):
        proc.kill()
    proc.communicate()


# ------------------------------------------------------------------------------------------- library
def compile_targets(
    targets: Sequence[Target] | None = None,
    *,
    out_dir: Path | None = None,
    check: bool = False,
    jobs: int | None = None,
    timeout: float = 120.0,
    use_cache: bool = True,
    pipeline_parameters: dict[str, Any] | None = None,
    disable_caching: bool | None = None,
    function: str | None = None,
    settings: Settings | None = None,
    ignore_sdk_version: bool = False,
    layout: str = "flat",
) -> CompileReport:
    """Compile ``targets`` (config entries, files, directories, or ``file.py:function``).

    With ``check``, compiles into memory and compares with the files on disk instead of writing them (see
    :mod:`._compare` for what is compared); results whose file is missing, differs, or was compiled by another
    kfp are not ``ok`` (status ``missing``/``stale``/``sdk-mismatch``). ``ignore_sdk_version``: a file that differs
    only in its SDK version stamp is fresh. ``layout="mirror"``: one directory per source under the output
    directory. Raises :class:`UsageError` for bad input (nothing to compile, bad options).
    """
    started = time.monotonic()
    if targets is None:
        targets = list(settings.pipelines) if settings is not None else []
    has_builds = any(isinstance(t, PipelineConfig) and t.build for t in targets)
    if has_builds and function is None:  # pipelines a build command makes, beside the kfp ones (compile/_build.py)
        from kfp_ci.compile._build import compile_with_builds  # only projects with builds pay for it

        def rest(others: list[Target]) -> CompileReport:
            return compile_targets(others, out_dir=out_dir, check=check, jobs=jobs, timeout=timeout,
                                   use_cache=use_cache, pipeline_parameters=pipeline_parameters,
                                   disable_caching=disable_caching, settings=settings,
                                   ignore_sdk_version=ignore_sdk_version, layout=layout)
        built = compile_with_builds(targets, rest, root=_project_root(settings), check=check, timeout=timeout,
                                    use_cache=use_cache, jobs=jobs, repo=repo_root(),
                                    project_file=settings.project_file if settings is not None else None)
        if built is not None:
            return built
    elif has_builds:
        targets = [t for t in targets if not (isinstance(t, PipelineConfig) and t.build)]
    if not targets:
        raise UsageError("nothing to compile: pass files or directories, or declare [[tool.kfp-ci.pipelines]] "
                         "in pyproject.toml")
    if layout not in ("flat", "mirror"):
        raise UsageError(f"unknown layout {layout!r}: use flat or mirror")
    if disable_caching is None:
        disable_caching = os.environ.get("KFP_DISABLE_EXECUTION_CACHING_BY_DEFAULT", "").strip().lower() in _TRUE
    repo = repo_root()
    by_source, scan_errors, configs = _targets_to_jobs(targets, function, repo)
    if not by_source and not scan_errors:
        what = f"no pipeline function named {function!r}" if function else "no @dsl.pipeline function"
        names = ", ".join(t.source if isinstance(t, PipelineConfig) else str(t) for t in targets)
        raise UsageError(f"{what} found in {names}")
    python = _python()
    sdk = _sdk_version(python)
    if sdk is None:
        raise UsageError(f"kfp is not installed for {python}: pip install 'kfp-ci[compile]' (or set KFP_CI_PYTHON "
                         "to an interpreter that has kfp)")
    sdk_major = int(sdk.split(".")[0]) if sdk.split(".")[0].isdigit() else 2
    root = _project_root(settings)
    cache_dir = root / ".kfp-ci" / "cache"
    cache = Cache(cache_dir, enabled=use_cache, writable=not check)
    opts: dict[str, Any] = {"pipeline_parameters": pipeline_parameters or {}, "disable_caching": bool(disable_caching),
                            "project_root": str(root)}
    env = _worker_env()
    for job in by_source.values():
        job.only = function if job.discover else None
        for item in job.found:
            config = configs.get((item.source, item.function))
            if config is not None:
                job.config[item.function] = config

    raw: dict[Path, list[dict[str, Any]]] = {}
    cached: set[Path] = set()
    to_run: list[_Job] = []
    for job in by_source.values():
        job.suffix = {f.function: _suffix(job.config.get(f.function), out_dir) for f in job.found}
        identity = {
            "source": str(job.source),
            "targets": sorted(job.suffix.items()),
            "hints": sorted((f.function, f.line) for f in job.found),
            "discover": job.discover, "only": job.only,
            "sdk": sdk, "python": python, "params": opts["pipeline_parameters"],
            "disable_caching": opts["disable_caching"], "root": str(root),
            "worker": file_digest(_WORKER),
            "env": _compile_env(),
        }
        job.cache_key = Cache.key(identity)
        hit = cache.get(job.cache_key, env)
        if hit is not None and (job.discover or {r.get("function") for r in hit} >= {f.function for f in job.found}):
            raw[job.source] = hit
            cached.add(job.source)
        else:
            job.digest = file_digest(job.source)
            to_run.append(job)

    if to_run:
        parallel = jobs or os.cpu_count() or 1
        with tempfile.TemporaryDirectory(prefix="kfp-ci-compile-") as tmp:
            answer = _run_zygote(python, to_run, opts, parallel, timeout, Path(tmp), env)
        sdk = str(answer.get("sdk_version") or sdk)
        for job, outcome in zip(to_run, answer["jobs"], strict=True):
            results = list(outcome.get("results", []))
            raw[job.source] = results
            if all(r.get("ok") for r in results) and outcome.get("deps"):
                cache.put(job.cache_key, list(outcome.get("deps", [])), results, {str(job.source): job.digest},
                          dirs=list(outcome.get("dirs", [])), env_names=list(outcome.get("env", [])), env=env)

    out: list[CompileResult] = []
    for error in scan_errors:
        for function_name, line in error.functions or ((error.source.stem, error.line or 1),):
            out.append(CompileResult(None, error.source, function_name, None, False, "failed",
                                     PipelineError(error.message, error.source, error.line or line), sdk))
    compiled_sources = set(by_source)
    seen_outputs: dict[Path, str] = {}
    imported_once: set[tuple[str, Any]] = set()
    for job in by_source.values():
        entries = raw.get(job.source, [])
        is_cached = job.source in cached
        if not job.discover:
            got = {e.get("function"): e for e in entries}
            entries = [got.get(f.function) or {
                "function": f.function, "ok": False, "line": f.line,
                "error": {"message": "the compiler returned no result", "file": str(f.source), "line": f.line}}
                for f in job.found]
        if not entries and job.explicit:
            wanted = f"no pipeline named {function!r}" if function else "no kfp pipeline"
            out.append(CompileResult(None, job.source, function or job.source.stem, None, False, "failed",
                                     PipelineError(f"{wanted} in {job.source.name}: kfp finds none among the "
                                                   "module's objects after importing it", job.source, 1), sdk))
            continue
        # a pipeline imported into compiled files is compiled once: under the module that defines it when that
        # module is compiled too, else under the first file (in target order) that imports it
        kept = []
        for entry in entries:
            defined = entry.get("defined_in")
            if defined and Path(defined) != job.source:
                origin = (defined, entry.get("defined_line"))
                if Path(defined) in compiled_sources or origin in imported_once:
                    continue
                imported_once.add(origin)
            kept.append(entry)
        entries = kept
        for entry in entries:
            item = Found(job.source, str(entry["function"]), int(entry.get("line") or 1))
            out.append(_result(item, entry, job, configs, out_dir, settings, check, sdk, sdk_major, is_cached,
                               seen_outputs, ignore_sdk_version, layout, repo))
    return CompileReport(tuple(out), sdk, check, time.monotonic() - started, repo)


def _result(item: Found, entry: dict[str, Any], job: _Job, configs: dict[tuple[Path, str], PipelineConfig],
            out_dir: Path | None, settings: Settings | None, check: bool, sdk: str, sdk_major: int, is_cached: bool,
            seen_outputs: dict[Path, str], ignore_sdk_version: bool, layout: str, repo: Path) -> CompileResult:
    config = configs.get((item.source, item.function)) or job.source_config
    if not entry.get("ok"):
        err = entry.get("error") or {}
        message = str(err.get("message") or "failed")
        return CompileResult(
            config.name if config and config.name else None, item.source, item.function, None, False, "failed",
            PipelineError(message, Path(err["file"]) if err.get("file") else item.source,
                          err.get("line") or item.line, hint_for(message, sdk_major)),
            sdk, is_cached)
    name = str(entry.get("pipeline_name") or item.function)
    output = _output_for(item, config, out_dir, settings.out_dir if settings else None, name, layout, repo)
    data = str(entry["data"]).encode("utf-8")
    display = config.name if config and config.name else name
    clash = seen_outputs.get(output)
    if clash is not None:
        avoid = ("give the pipelines different names, or use --layout mirror (one directory per source file under "
                 "the output directory)" if layout != "mirror" else "give the pipelines different names")
        if out_dir is None and layout != "mirror":
            avoid += " with --out-dir"
        return CompileResult(display, item.source, item.function, output, False, "failed", PipelineError(
            f"output {_shown(output, repo)} is also written by {clash}; {avoid}", item.source, item.line), sdk,
            is_cached)
    seen_outputs[output] = f"{_shown(item.source, repo)}:{item.function}"
    return _deliver(display, item, output, data, check, sdk, is_cached, ignore_sdk_version, repo)


def _shown(path: Path, repo: Path) -> str:
    """A path in a message: relative to the repository root when inside it."""
    try:
        return path.resolve().relative_to(repo).as_posix()
    except ValueError:
        return str(path)


def _deliver(name: str, item: Found, output: Path, data: bytes, check: bool, sdk: str,
             is_cached: bool, ignore_sdk_version: bool = False, repo: Path | None = None) -> CompileResult:
    repo = repo or Path.cwd().resolve()
    current = read_output(output)
    same = current is not None and (current == data or canonical(current) == canonical(data))
    if not check:
        status: Status = "unchanged"
        if not same:
            write_output(output, data)
            status = "written"
        return CompileResult(name, item.source, item.function, output, True, status, None, sdk, is_cached)
    if current is None:
        return CompileResult(name, item.source, item.function, output, False, "missing", PipelineError(
            f"compiled file {_shown(output, repo)} is missing; run kfp-ci compile and commit it", item.source,
            item.line), sdk, is_cached)
    if same:
        return CompileResult(name, item.source, item.function, output, True, "fresh", None, sdk, is_cached)
    committed = sdk_version_of(current)
    only_stamp = canonical(current, ignore_sdk_version=True) == canonical(data, ignore_sdk_version=True)
    if committed is not None and committed != sdk and only_stamp and ignore_sdk_version:
        return CompileResult(name, item.source, item.function, output, True, "fresh", None, sdk, is_cached,
                             committed_sdk_version=committed)
    shown = _shown(output, repo)
    diff = list(difflib.unified_diff(  # of what is compared: no clock stamps, the defaults' keys in one order
        canonical(current).decode("utf-8", "replace").splitlines(),
        canonical(data).decode("utf-8", "replace").splitlines(),
        f"{shown} (committed)", f"{shown} (fresh compile)", lineterm="", n=2))
    more = len(diff) - _DIFF_LINES
    text = "\n".join(diff[:_DIFF_LINES]) + (f"\n... ({more} more diff lines)" if more > 0 else "")
    if committed is not None and committed != sdk and not ignore_sdk_version:
        what = ("only the SDK version stamp differs" if only_stamp else
                "its content differs too, so it may also be stale")
        return CompileResult(name, item.source, item.function, output, False, "sdk-mismatch", PipelineError(
            f"compiled file {shown} was compiled with kfp {committed}, this is kfp {sdk} ({what}): pin "
            f"kfp=={committed} in CI to check it with the kfp that compiled it, or recompile with kfp {sdk} and "
            "commit" + (" (or pass --ignore-sdk-version)" if only_stamp else ""), item.source, item.line),
            sdk, is_cached, text, committed_sdk_version=committed)
    return CompileResult(name, item.source, item.function, output, False, "stale", PipelineError(
        f"compiled file {shown} is stale: it differs from a fresh compile of {item.source.name}:"
        f"{item.function}; run kfp-ci compile and commit it", item.source, item.line), sdk, is_cached, text,
        committed_sdk_version=committed)


def _compile_env() -> dict[str, str | None]:
    """Environment values part of every cache key (besides the variables a module is seen reading).

    ``KF_PIPELINES_COMPILER_MODE`` (kfp 1.8's compiler mode) and ``KFP_CI_IMAGE`` (the image tag the workflows
    hand to the compile step) always count; more names can be listed, comma-separated, in ``KFP_CI_COMPILE_ENV``.
    """
    names = {"KFP_CI_IMAGE", "KF_PIPELINES_COMPILER_MODE",
             *(n.strip() for n in os.environ.get("KFP_CI_COMPILE_ENV", "").split(",") if n.strip())}
    return {name: os.environ.get(name) for name in sorted(names)}
