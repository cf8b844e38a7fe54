"""Pipelines another tool builds: ``build = "python tfx_pipeline.py"`` in ``[[tool.kfp-ci.pipelines]]``.

``kfp-ci compile`` runs each build command with ``sh -c`` in the project directory (where ``pyproject.toml`` is),
beside the kfp pipelines and under the same timeout. The command writes the package to the path in
``$KFP_CI_OUTPUT`` (a temporary file with the configured output's name); kfp-ci checks that it is a pipeline package
KFP accepts (:mod:`kfp_ci._package`), then writes it to ``output`` (or, with ``--check``, compares it with the
committed file by content: the parsed pipeline, not the bytes, so formatting and re-packing do not count).

With ``inputs = [globs]`` the result is cached in ``.kfp-ci/cache/`` on the command, the set of matching files and
their contents; without, the command runs every time.
"""

from __future__ import annotations

import base64
import difflib
import glob
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kfp_ci._package import Package, parse_package, without_clock
from kfp_ci.compile._cache import Cache, file_digest
from kfp_ci.compile._results import CompileReport, CompileResult, PipelineError, read_output, write_output
from kfp_ci.config import PipelineConfig
from kfp_ci.errors import UsageError

__all__ = ["BUILD", "compile_with_builds", "run_build"]

BUILD = "build"
"""The ``function`` of a build pipeline's :class:`CompileResult` (the report shows ``pyproject.toml:build``)."""
_DIFF_LINES = 40
_TRACE = re.compile(r'File "([^"]+)", line (\d+)')


def compile_with_builds(
    targets: Sequence[Any],
    compile_rest: Callable[[list[Any]], CompileReport],
    *,
    root: Path,
    project_file: Path | None,
    check: bool,
    timeout: float,
    use_cache: bool,
    jobs: int | None,
    repo: Path | None = None,
) -> CompileReport | None:
    """Run the build pipelines among ``targets`` beside ``compile_rest(the others)``; ``None`` if there are none."""
    builds = [t for t in targets if isinstance(t, PipelineConfig) and t.build]
    if not builds:
        return None
    started = time.monotonic()
    rest = [t for t in targets if not (isinstance(t, PipelineConfig) and t.build)]
    cache = Cache(root / ".kfp-ci" / "cache", enabled=use_cache, writable=not check)
    workers = max(1, min(len(builds), jobs or os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kfp-ci-build") as pool:
        futures = [pool.submit(run_build, config, root=root, project_file=project_file, check=check,
                               timeout=timeout, cache=cache) for config in builds]
        report = compile_rest(rest) if rest else None
        results = [future.result() for future in futures]
    kfp_results = report.results if report is not None else ()
    return CompileReport((*kfp_results, *results), report.sdk_version if report else None, check,
                         time.monotonic() - started, root=report.root if report is not None else repo)


def _declared_at(project_file: Path | None, config: PipelineConfig) -> int | None:
    """The line of ``build = "..."`` for this command in ``pyproject.toml``."""
    if project_file is None or config.build is None:
        return None
    try:
        lines = project_file.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    declared = [(number, line) for number, line in enumerate(lines, 1) if re.match(r"\s*build\s*=", line)]
    spellings = (json.dumps(config.build), f"'{config.build}'", config.build)  # basic or literal TOML string
    for spelling in spellings:
        for number, line in declared:
            if spelling in line:
                return number
    return declared[0][0] if len(declared) == 1 else None


def _inputs(config: PipelineConfig) -> list[str]:
    files: set[str] = set()
    for pattern in config.inputs:
        files.update(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
    return sorted(files)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _failure(config: PipelineConfig, root: Path, project_file: Path | None, message: str,
             output: str = "") -> PipelineError:
    """Where a build failed: the project file of the last traceback frame, else the ``build =`` line."""
    for path, line in reversed(_TRACE.findall(output)):
        candidate = (root / path).resolve()
        if candidate.is_file() and candidate.is_relative_to(root) and ".kfp-ci" not in candidate.parts:
            return PipelineError(message, candidate, int(line))
    return PipelineError(message, project_file, _declared_at(project_file, config))


def _run(config: PipelineConfig, root: Path, destination: Path, timeout: float) -> tuple[int | None, str]:
    env = {**os.environ, "KFP_CI_OUTPUT": str(destination)}
    assert config.build is not None
    proc = subprocess.Popen(["/bin/sh", "-c", config.build], cwd=root, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        out, _ = proc.communicate()
        return None, out.decode("utf-8", "replace")
    return proc.returncode, out.decode("utf-8", "replace")


def run_build(config: PipelineConfig, *, root: Path, project_file: Path | None, check: bool, timeout: float,
              cache: Cache) -> CompileResult:
    """Build one pipeline and deliver (or check) its output."""
    assert config.output is not None and config.build is not None
    root = config.build_dir or root
    if project_file is None and (root / "pyproject.toml").is_file():
        project_file = root / "pyproject.toml"
    output = config.output
    source = project_file or root / "pyproject.toml"

    def failed(message: str, log: str = "") -> CompileResult:
        return CompileResult(config.name, source, BUILD, output, False, "failed",
                             _failure(config, root, project_file, message, log))

    key = ""
    if config.inputs:
        files = _inputs(config)
        key = Cache.key({"build": config.build, "output": output.name, "root": str(root), "files": files,
                         "env": os.environ.get("KFP_CI_IMAGE")})
        hit = cache.get(key, os.environ) if files else None
        if hit:
            data = base64.b64decode(hit[0]["data"])
            return _deliver(config, source, output, data, check, cached=True, failed=failed,
                            line=_declared_at(project_file, config))
    digests = {path: file_digest(path) for path in _inputs(config)} if key else {}
    with tempfile.TemporaryDirectory(prefix="kfp-ci-build-") as tmp:
        destination = Path(tmp) / output.name
        before = output.read_bytes() if check and output.is_file() else None
        code, log = _run(config, root, destination, timeout)
        if check and before is not None and output.read_bytes() != before:
            output.write_bytes(before)  # --check touches nothing: put the committed file back
            return failed(f"the build wrote {_rel(output, root)} itself; it must write the path in $KFP_CI_OUTPUT "
                          "(kfp-ci compile moves it into place)")
        if code is None:
            return failed(f"the build command did not finish within {timeout:g} s (--timeout); it was killed", log)
        if code != 0:
            last = [line for line in log.strip().splitlines() if line.strip()][-1:] or ["no output"]
            return failed(f"the build command `{config.build}` exited with {code}: {last[0].strip()}", log)
        if not destination.is_file():
            return failed(f"the build command `{config.build}` wrote nothing to $KFP_CI_OUTPUT ({output.name}); "
                          "write the package to the path in that environment variable", log)
        data = destination.read_bytes()
    if key and digests and all(digests.values()):
        cache.put(key, list(digests), [{"function": BUILD, "ok": True, "data": base64.b64encode(data).decode()}],
                  digests)
    return _deliver(config, source, output, data, check, cached=False, failed=failed,
                    line=_declared_at(project_file, config))


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _text(data: bytes, package: Package | None) -> list[str]:
    """The lines to diff: the file's text, or the pipeline inside an archive."""
    for raw in (data, package.content if package is not None else b""):
        try:
            return raw.decode("utf-8").splitlines()
        except UnicodeDecodeError:
            continue
    return []


def _same(current: bytes | None, fresh: Package, shown: Path) -> bool:
    """Whether the file on disk holds the same pipeline as ``fresh`` (content, not bytes)."""
    if current is None:
        return False
    try:
        committed = parse_package(current, shown)
    except UsageError:
        return False
    return _comparable(committed) == _comparable(fresh)


def _comparable(package: Package) -> tuple[Any, ...]:
    """What a package's content is, for --check: its documents (less kfp 1.8's compile-time stamp) and job values."""
    return package.kind, [without_clock(doc) for doc in package.docs], dict(package.job_parameters)


def _deliver(config: PipelineConfig, source: Path, output: Path, data: bytes, check: bool, *, cached: bool,
             failed: Callable[[str], CompileResult], line: int | None) -> CompileResult:
    shown = Path(os.path.relpath(output)) if output.is_relative_to(Path.cwd()) else output
    try:
        fresh = parse_package(data, shown)
    except UsageError as exc:
        return failed(f"the build's output is not a pipeline package KFP accepts: {exc}")
    name = config.name or fresh.pipeline_name
    current = read_output(output)
    if not check:
        status: Any = "unchanged"
        if current != data and not _same(current, fresh, shown):  # an archive's timestamps are not a change
            write_output(output, data)
            status = "written"
        return CompileResult(name, source, BUILD, output, True, status, None, None, cached)
    if current is None:
        return CompileResult(name, source, BUILD, output, False, "missing", PipelineError(
            f"built file {output} is missing; run kfp-ci compile and commit it", source, line), None, cached)
    try:
        committed: Package | None = parse_package(current, shown)
    except UsageError as exc:
        committed = None
        why = str(exc)
    if committed is not None and _same(current, fresh, shown):
        return CompileResult(name, source, BUILD, output, True, "fresh", None, None, cached)
    diff = list(difflib.unified_diff(_text(current, committed), _text(data, fresh),
                                     f"{output} (committed)", f"{output} (fresh build)", lineterm="", n=2))
    more = len(diff) - _DIFF_LINES
    text = "\n".join(diff[:_DIFF_LINES]) + (f"\n... ({more} more diff lines)" if more > 0 else "")
    detail = "it differs from a fresh build" if committed is not None else f"the committed file is unreadable ({why})"
    return CompileResult(name, source, BUILD, output, False, "stale", PipelineError(
        f"built file {output} is stale: {detail} of `{config.build}`; run kfp-ci compile and commit it", source,
        line),
        None, cached, text or None)
