"""The compiler driver: targets -> found pipelines -> cache -> zygote worker -> outputs (or a freshness check).

It finds pipeline functions by reading the sources (AST), answers what it can from the cache (``.kfp-ci/cache/``),
and hands the rest to a zygote process (:mod:`kfp_ci.compile._worker`) that imports kfp once and forks one child
per source module. Every output's bytes equal what ``kfp dsl compile --py FILE --function F --output OUT`` writes
with the same kfp.
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
from kfp_ci.compile._discover import Found, ScanError, discover, scan_file
from kfp_ci.compile._report import hint_for
from kfp_ci.compile._results import CompileReport, CompileResult, PipelineError, Status
from kfp_ci.config import PipelineConfig, Settings
from kfp_ci.errors import CompileError, UsageError

__all__ = ["Target", "compile_targets"]

Target = PipelineConfig | Path | str

_WORKER = Path(__file__).with_name("_worker.py")
_DIFF_LINES = 40
_TRUE = {"1", "true", "t", "yes", "y", "on"}


@dataclass(slots=True)
class _Job:
    """One source module and the pipeline functions to compile from it."""

    source: Path
    found: list[Found]
    config: dict[str, PipelineConfig] = field(default_factory=dict)
    suffix: dict[str, str] = field(default_factory=dict)
    cache_key: str = ""
    digest: str | None = None


# ------------------------------------------------------------------------------------------- targets
def _targets_to_found(targets: Iterable[Target], function: str | None) -> tuple[list[Found], list[ScanError],
                                                                                dict[tuple[Path, str], PipelineConfig]]:
    found: list[Found] = []
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
            picked = [f for f in scanned if wanted is None or f.function == wanted]
            if wanted and not picked:  # maybe defined without a decorator we recognise: let kfp judge it
                picked = [Found(source, wanted, _def_line(source, wanted))]
            if not picked:
                raise UsageError(f"no @dsl.pipeline function in {source}; name one with file.py:function")
            for item in picked:
                configs[(item.source, item.function)] = target
            found.extend(picked)
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
                picked = [f for f in scanned if f.function == func] or [Found(source, func, _def_line(source, func))]
                found.extend(picked)
                continue
        paths.append(path)
    if paths:
        more, more_errors = discover(paths)
        found.extend(more)
        errors.extend(more_errors)
    if function is not None:
        found = [f for f in found if f.function == function]
    unique: dict[tuple[Path, str], Found] = {}
    for item in found:
        unique.setdefault((item.source, item.function), item)
    return list(unique.values()), errors, configs


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
                pipeline_name: str) -> Path:
    """``--out-dir``/<name>.yaml, else the configured output, else [tool.kfp-ci] out-dir, else next to the source."""
    name = _safe_name((config.name if config else None) or pipeline_name)
    if out_dir is not None:
        return (out_dir / f"{name}.yaml").resolve()
    if config is not None and config.output is not None:
        return config.output
    return ((default_dir or item.source.parent) / f"{name}.yaml").resolve()


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


def _run_zygote(python: str, jobs: list[_Job], opts: dict[str, Any], parallel: int, timeout: float,
                workdir: Path) -> dict[str, Any]:
    request = {
        "workdir": str(workdir),
        "opts": opts,
        "parallel": parallel,
        "timeout": timeout,
        "jobs": [
            {"source": str(job.source),
             "targets": [{"function": f.function, "line": f.line, "suffix": job.suffix.get(f.function, ".yaml")}
                         for f in job.found]}
            for job in jobs
        ],
    }
    request_path = workdir / "request.json"
    result_path = workdir / "result.json"
    request_path.write_text(json.dumps(request), encoding="utf-8")
    env = dict(os.environ)
    env.pop("PYTHONSAFEPATH", None)
    limit = timeout * (len(jobs) // max(parallel, 1) + 2) + 120
    try:
        proc = subprocess.run([python, str(_WORKER), str(request_path), str(result_path)], capture_output=True,
                              text=True, env=env, check=False, timeout=limit)
    except subprocess.TimeoutExpired:
        raise CompileError(f"the compiler process ({python}) did not finish within {limit:g} s") from None
    except OSError as exc:
        raise UsageError(f"cannot run the compiling interpreter {python}: {exc.strerror}") from None
    if proc.returncode != 0 or not result_path.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise CompileError(f"the compiler process ({python}) failed with exit code {proc.returncode}: {tail[0]}")
    answer: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
    if answer.get("error"):
        raise UsageError(str(answer["error"]))
    return answer


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
) -> CompileReport:
    """Compile ``targets`` (config entries, files, directories, or ``file.py:function``).

    With ``check``, compiles into a temporary directory and compares with the files on disk instead of
    writing them; results whose file is missing or differs are not ``ok`` (status ``missing``/``stale``).
    Raises :class:`UsageError` for bad input (nothing to compile, bad options).
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
                                   disable_caching=disable_caching, settings=settings)
        built = compile_with_builds(targets, rest, root=_project_root(settings), check=check, timeout=timeout,
                                    use_cache=use_cache, jobs=jobs,
                                    project_file=settings.project_file if settings is not None else None)
        if built is not None:
            return built
    elif has_builds:
        targets = [t for t in targets if not (isinstance(t, PipelineConfig) and t.build)]
    if not targets:
        raise UsageError("nothing to compile: pass files or directories, or declare [[tool.kfp-ci.pipelines]] "
                         "in pyproject.toml")
    if disable_caching is None:
        disable_caching = os.environ.get("KFP_DISABLE_EXECUTION_CACHING_BY_DEFAULT", "").strip().lower() in _TRUE
    found, scan_errors, configs = _targets_to_found(targets, function)
    if not found and not scan_errors:
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

    by_source: dict[Path, _Job] = {}
    for item in found:
        job = by_source.setdefault(item.source, _Job(item.source, []))
        job.found.append(item)
        config = configs.get((item.source, item.function))
        if config is not None:
            job.config[item.function] = config

    raw: dict[tuple[Path, str], dict[str, Any]] = {}
    cached: set[tuple[Path, str]] = set()
    to_run: list[_Job] = []
    for job in by_source.values():
        job.suffix = {f.function: _suffix(job.config.get(f.function), out_dir) for f in job.found}
        identity = {
            "source": str(job.source),
            "targets": sorted(job.suffix.items()),
            "sdk": sdk, "python": python, "params": opts["pipeline_parameters"],
            "disable_caching": opts["disable_caching"], "root": str(root),
            "worker": file_digest(_WORKER),
            "env": _compile_env(),
        }
        job.cache_key = Cache.key(identity)
        hit = cache.get(job.cache_key)
        if hit is not None and {r.get("function") for r in hit} >= {f.function for f in job.found}:
            for entry in hit:
                raw[(job.source, entry["function"])] = entry
                cached.add((job.source, entry["function"]))
        else:
            job.digest = file_digest(job.source)
            to_run.append(job)

    if to_run:
        parallel = jobs or os.cpu_count() or 1
        with tempfile.TemporaryDirectory(prefix="kfp-ci-compile-") as tmp:
            answer = _run_zygote(python, to_run, opts, parallel, timeout, Path(tmp))
        sdk = str(answer.get("sdk_version") or sdk)
        for job, outcome in zip(to_run, answer["jobs"], strict=True):
            results = outcome.get("results", [])
            for entry in results:
                raw[(job.source, entry["function"])] = entry
            if results and all(r.get("ok") for r in results):
                cache.put(job.cache_key, list(outcome.get("deps", [])), results, {str(job.source): job.digest})

    out: list[CompileResult] = []
    for error in scan_errors:
        out.append(CompileResult(None, error.source, "?", None, False, "failed",
                                 PipelineError(error.message, error.source, error.line), sdk))
    seen_outputs: dict[Path, str] = {}
    for item in found:
        entry = raw.get((item.source, item.function)) or {
            "ok": False, "error": {"message": "the compiler returned no result", "file": str(item.source),
                                   "line": item.line}}
        config = configs.get((item.source, item.function))
        is_cached = (item.source, item.function) in cached
        if not entry.get("ok"):
            err = entry.get("error") or {}
            message = str(err.get("message") or "failed")
            out.append(CompileResult(
                config.name if config and config.name else None, item.source, item.function,
                None, False, "failed",
                PipelineError(message, Path(err["file"]) if err.get("file") else item.source,
                              err.get("line") or item.line, hint_for(message, sdk_major)),
                sdk, is_cached))
            continue
        name = str(entry.get("pipeline_name") or item.function)
        output = _output_for(item, config, out_dir, settings.out_dir if settings else None, name)
        data = str(entry["data"]).encode("utf-8")
        display = config.name if config and config.name else name
        clash = seen_outputs.get(output)
        if clash is not None:
            out.append(CompileResult(display, item.source, item.function, output, False, "failed", PipelineError(
                f"output {output} is also written by {clash}; give the pipelines different names or outputs",
                item.source, item.line), sdk, is_cached))
            continue
        seen_outputs[output] = f"{item.source.name}:{item.function}"
        out.append(_deliver(display, item, output, data, check, sdk, is_cached))
    return CompileReport(tuple(out), sdk, check, time.monotonic() - started)


def _deliver(name: str, item: Found, output: Path, data: bytes, check: bool, sdk: str,
             is_cached: bool) -> CompileResult:
    try:
        current: bytes | None = output.read_bytes()
    except FileNotFoundError:
        current = None
    except OSError as exc:
        raise UsageError(f"cannot read {output}: {exc.strerror}") from None
    if not check:
        status: Status = "unchanged"
        if current != data:
            try:
                output.parent.mkdir(parents=True, exist_ok=True)
                tmp = output.with_name(f".{output.name}.kfp-ci-tmp")
                tmp.write_bytes(data)
                os.replace(tmp, output)
            except OSError as exc:
                raise UsageError(f"cannot write {output}: {exc.strerror}") from None
            status = "written"
        return CompileResult(name, item.source, item.function, output, True, status, None, sdk, is_cached)
    if current is None:
        return CompileResult(name, item.source, item.function, output, False, "missing", PipelineError(
            f"compiled file {output} is missing; run kfp-ci compile and commit it", item.source, item.line),
            sdk, is_cached)
    if current != data:
        diff = list(difflib.unified_diff(
            current.decode("utf-8", "replace").splitlines(), data.decode("utf-8", "replace").splitlines(),
            f"{output} (committed)", f"{output} (fresh compile)", lineterm="", n=2))
        more = len(diff) - _DIFF_LINES
        text = "\n".join(diff[:_DIFF_LINES]) + (f"\n... ({more} more diff lines)" if more > 0 else "")
        return CompileResult(name, item.source, item.function, output, False, "stale", PipelineError(
            f"compiled file {output} is stale: it differs from a fresh compile of {item.source.name}:"
            f"{item.function}; run kfp-ci compile and commit it", item.source, item.line), sdk, is_cached, text)
    return CompileResult(name, item.source, item.function, output, True, "fresh", None, sdk, is_cached)


def _compile_env() -> dict[str, str | None]:
    """Environment values pipeline code may read while compiling, part of every cache key.

    ``KFP_CI_IMAGE`` (the image tag the workflows hand to the compile step) always counts; more names can be
    listed, comma-separated, in ``KFP_CI_COMPILE_ENV``.
    """
    names = {"KFP_CI_IMAGE", *(n.strip() for n in os.environ.get("KFP_CI_COMPILE_ENV", "").split(",") if n.strip())}
    return {name: os.environ.get(name) for name in sorted(names)}
