"""The compiling side of ``kfp-ci compile``: a zygote that imports kfp once, then one child per source module.

This file runs as a standalone script in the interpreter that has kfp installed (``python _worker.py
REQUEST RESULT``); it imports nothing from kfp_ci, so any interpreter with kfp (2.x or 1.8) can run it.

The zygote imports kfp, then forks one child per source module (``--jobs`` at a time; where ``fork`` is not
available, or with ``KFP_CI_COMPILE_START=spawn``, it starts ``python _worker.py --child JOB``
instead). A child imports only its module, the
way ``kfp dsl compile`` does (its directory first on ``sys.path``, ``__import__`` of the file's stem), compiles
the requested pipeline functions into a scratch directory and writes a JSON result: the compiled bytes, the
pipeline names, errors located in the user's code, and the project-local files the module loaded (for the
cache). A child that raises, exits, kills itself or hangs past the timeout fails only its own pipelines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
_LOG_TAIL = 2000


def _is_user_file(path: str, root: str | list[str]) -> bool:
    """Under the project root (or the source's directory), outside any site-packages and kfp-ci itself."""
    path = os.path.abspath(path)
    roots = [root] if isinstance(root, str) else root
    if not any(path.startswith(r.rstrip(os.sep) + os.sep) for r in roots):
        return False
    parts = path.split(os.sep)
    return "site-packages" not in parts and "dist-packages" not in parts and not path.startswith(_HERE + os.sep)


def _locate(
    exc: BaseException, job: dict[str, Any], root: str | list[str], def_line: int | None
) -> tuple[str, int | None]:
    """The deepest frame in the user's code, else the pipeline's ``def`` line."""
    if isinstance(exc, SyntaxError) and exc.filename and os.path.exists(exc.filename):
        return os.path.abspath(exc.filename), exc.lineno
    best: tuple[str, int | None] | None = None
    source = os.path.abspath(job["source"])
    in_source: tuple[str, int | None] | None = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        filename = os.path.abspath(frame.f_code.co_filename)
        if filename == source:
            located: int | None = lineno
            if sys.version_info < (3, 11) and frame.f_code.co_name == "<module>":
                located = _decorator_line(filename, lineno)
            in_source = (filename, located)
        if _is_user_file(filename, root):
            best = (filename, lineno)
    if in_source is not None:
        return in_source
    if best is not None:
        return best
    return source, def_line


def _decorator_line(filename: str, lineno: int | None) -> int | None:
    """Python <= 3.10 reports an error raised while decorating at the ``def`` line, 3.11+ at the decorator's line.

    Map the first to the second, so that an error in ``@dsl.pipeline`` or ``@dsl.component`` is located at the
    same line on every Python (the decorator named ``dsl.*``, else the innermost one).
    """
    import ast

    try:
        with open(filename, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), filename)
    except (OSError, SyntaxError, ValueError):
        return lineno
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.lineno == lineno:
            decorators = node.decorator_list
            if not decorators:
                return lineno
            kfp = [d for d in decorators if "dsl." in ast.unparse(d)]
            return (kfp or decorators)[-1].lineno
    return lineno


def _message(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"the module called sys.exit({exc.code!r}) while being imported or compiled"
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def _error(exc: BaseException, job: dict[str, Any], root: str | list[str], def_line: int | None) -> dict[str, Any]:
    file, line = _locate(exc, job, root, def_line)
    return {"message": _message(exc), "file": file, "line": line, "kind": type(exc).__name__}


class _Recorder:
    """Remembers the component YAML files (under the project root) a module opens."""

    def __init__(self, root: str | list[str]) -> None:
        self.root = root
        self.files: set[str] = set()

    def install(self) -> None:
        import builtins
        import io

        original = builtins.open

        def recording_open(file: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                if isinstance(file, (str, bytes, os.PathLike)):
                    name = os.fsdecode(file)
                    if name.endswith((".yaml", ".yml")):
                        full = os.path.abspath(name)
                        if _is_user_file(full, self.root) and os.path.isfile(full):
                            self.files.add(full)
            except Exception:  # noqa: S110 - recording must never break the user's code
                pass
            return original(file, *args, **kwargs)

        builtins.open = recording_open
        io.open = recording_open


def _compile_one(
    kfp: Any, major: int, obj: Any, target: dict[str, Any], opts: dict[str, Any], scratch: str
) -> dict[str, Any]:
    path = os.path.join(scratch, f"{target['function']}{target.get('suffix') or '.yaml'}")
    params = opts.get("pipeline_parameters") or {}
    if major >= 2:
        from kfp.dsl import graph_component

        if not isinstance(obj, graph_component.GraphComponent):
            raise TypeError(f"{target['function']} is not a pipeline (decorate it with @dsl.pipeline)")
        kfp.compiler.Compiler().compile(pipeline_func=obj, pipeline_parameters=params, package_path=path,
                                        type_check=True)
        name = obj.pipeline_spec.pipeline_info.name if hasattr(obj, "pipeline_spec") else obj.name
    else:
        if not callable(obj):
            raise TypeError(f"{target['function']} is not a pipeline function")
        if params:
            raise ValueError("--pipeline-parameters is not supported by kfp 1.x; set defaults in the pipeline")
        kfp.compiler.Compiler().compile(obj, path)
        name = getattr(obj, "_component_human_name", None) or obj.__name__
    with open(path, "rb") as fh:
        data = fh.read()
    return {"function": target["function"], "ok": True, "pipeline_name": str(name), "data": data.decode("utf-8")}


def run_child(job: dict[str, Any], opts: dict[str, Any], result_path: str) -> None:
    """Import one module, compile its pipelines, write the JSON result. Runs in its own process."""
    import importlib
    import tempfile

    root = [opts["project_root"], os.path.dirname(os.path.abspath(job["source"]))]
    recorder = _Recorder(root)
    recorder.install()
    import kfp
    import kfp.compiler

    major = int(str(kfp.__version__).split(".")[0])
    if major >= 2:
        from kfp.dsl.pipeline_context import Pipeline

        Pipeline._execution_caching_default = not opts.get("disable_caching", False)
    source = os.path.abspath(job["source"])
    directory = os.path.dirname(source)
    stem = os.path.splitext(os.path.basename(source))[0]
    results: list[dict[str, Any]] = []
    sys.path.insert(0, directory)
    module_error: BaseException | None = None
    module: Any = None
    try:
        existing = sys.modules.get(stem)
        if existing is not None and os.path.abspath(getattr(existing, "__file__", "") or "") != source:
            del sys.modules[stem]
        module = importlib.import_module(stem)
    except BaseException as exc:
        module_error = exc
    with tempfile.TemporaryDirectory(prefix="kfp-ci-") as scratch:
        for target in job["targets"]:
            def_line = target.get("line")
            if module_error is not None:
                results.append({"function": target["function"], "ok": False,
                                "error": _error(module_error, job, root, def_line)})
                continue
            obj = getattr(module, target["function"], None)
            if obj is None:
                results.append({"function": target["function"], "ok": False, "error": {
                    "message": f"no pipeline function {target['function']!r} in {os.path.basename(source)}",
                    "file": source, "line": def_line, "kind": "NotFound"}})
                continue
            try:
                results.append(_compile_one(kfp, major, obj, target, opts, scratch))
            except BaseException as exc:
                error = _error(exc, job, root, def_line)
                results.append({"function": target["function"], "ok": False, "error": error})
    deps = set(recorder.files)
    for mod in list(sys.modules.values()):
        filename = getattr(mod, "__file__", None)
        if filename and filename.endswith(".py") and _is_user_file(filename, root) and os.path.isfile(filename):
            deps.add(os.path.abspath(filename))
    deps.add(source)
    payload = {"results": results, "deps": sorted(deps)}
    tmp = result_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(payload, fh)
    os.replace(tmp, result_path)


class _Child:
    def __init__(self, index: int, job: dict[str, Any], opts: dict[str, Any], workdir: str) -> None:
        self.index = index
        self.job = job
        self.result = os.path.join(workdir, f"job-{index}.json")
        self.log = os.path.join(workdir, f"job-{index}.log")
        self.started = time.monotonic()
        self.pid = 0
        self.proc: subprocess.Popen[bytes] | None = None
        if hasattr(os, "fork") and os.environ.get("KFP_CI_COMPILE_START", "fork") != "spawn":
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:  # the child
                code = 0
                try:
                    fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    os.dup2(fd, 1)
                    os.dup2(fd, 2)
                    os.close(fd)
                    run_child(job, opts, self.result)
                except BaseException:
                    traceback.print_exc()
                    code = 70
                finally:
                    try:
                        sys.stdout.flush()
                        sys.stderr.flush()
                    finally:
                        os._exit(code)
            self.pid = pid
        else:  # spawn fallback
            request = os.path.join(workdir, f"job-{index}.request.json")
            with open(request, "w", encoding="utf-8") as fh:
                json.dump({"job": job, "opts": opts, "result": self.result}, fh)
            with open(self.log, "wb") as log:
                self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", request],
                                             stdout=log, stderr=subprocess.STDOUT)

    def poll(self) -> int | None:
        """Exit status (negative: killed by that signal), or None while running."""
        if self.proc is not None:
            return self.proc.poll()
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0:
            return None
        if os.WIFSIGNALED(status):
            return -os.WTERMSIG(status)
        return os.WEXITSTATUS(status)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            return
        import signal

        try:
            os.kill(self.pid, getattr(signal, "SIGKILL", signal.SIGTERM))
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)

    def log_tail(self) -> str:
        try:
            with open(self.log, "rb") as fh:
                data = fh.read()
        except OSError:
            return ""
        return data[-_LOG_TAIL:].decode("utf-8", "replace").strip()


def _failed(job: dict[str, Any], message: str) -> dict[str, Any]:
    return {"results": [{"function": t["function"], "ok": False,
                         "error": {"message": message, "file": os.path.abspath(job["source"]), "line": t.get("line"),
                                   "kind": "Crash"}} for t in job["targets"]], "deps": []}


def _warm_up(kfp: Any, major: int, workdir: str) -> None:
    """Compile a throw-away pipeline once, so the lazy imports of compiling are paid here, not in every child."""
    if major < 2:
        return
    try:
        from kfp import components, dsl

        echo = components.load_component_from_text(
            "name: kfp-ci-warm-up\ninputs:\n- {name: text, type: String}\nimplementation:\n  container:\n"
            "    image: alpine\n    command: [echo, {inputValue: text}]\n"
        )

        def warm_up() -> None:
            echo(text="x")

        warm_up.__annotations__ = {}  # this file uses string annotations; kfp reads them
        pipeline = dsl.pipeline(name="kfp-ci-warm-up")(warm_up)
        kfp.compiler.Compiler().compile(pipeline, os.path.join(workdir, "warm-up.yaml"))
    except Exception:  # noqa: S110 - only an optimisation
        pass


def run_zygote(request: dict[str, Any]) -> dict[str, Any]:
    """Import kfp once, then compile every job in a child of its own, ``jobs`` at a time."""
    workdir = request["workdir"]
    opts = request["opts"]
    try:
        import kfp
        import kfp.compiler

        if int(str(kfp.__version__).split(".")[0]) >= 2:
            import kfp.dsl
    except ImportError as exc:
        return {"error": f"kfp is not installed in {sys.executable} ({exc}); pip install 'kfp-ci[compile]'"}
    version = str(kfp.__version__)
    _warm_up(kfp, int(version.split(".")[0]), workdir)
    if opts.get("disable_caching") and int(version.split(".")[0]) < 2:
        opts = {**opts, "disable_caching": False}
    pending = list(enumerate(request["jobs"]))
    running: list[_Child] = []
    outcomes: dict[int, dict[str, Any]] = {}
    limit = max(1, int(request.get("parallel") or 1))
    timeout = float(request.get("timeout") or 120.0)
    while pending or running:
        while pending and len(running) < limit:
            index, job = pending.pop(0)
            running.append(_Child(index, job, opts, workdir))
        time.sleep(0.003)
        for child in list(running):
            status = child.poll()
            if status is None:
                if time.monotonic() - child.started > timeout:
                    child.kill()
                    running.remove(child)
                    outcomes[child.index] = _failed(child.job, f"timed out after {timeout:g} s (the module hangs "
                                                               "while being imported or compiled); killed")
                continue
            running.remove(child)
            if status == 0 and os.path.exists(child.result):
                with open(child.result, encoding="utf-8") as fh:
                    outcomes[child.index] = json.load(fh)
                continue
            how = f"killed by signal {-status}" if status < 0 else f"exited with code {status}"
            tail = child.log_tail()
            last = tail.splitlines()[-1] if tail else ""
            outcomes[child.index] = _failed(child.job, f"the interpreter {how} while importing or compiling the "
                                            "module (os._exit, a crash or a kill)" + (f": {last}" if last else ""))
    return {"sdk_version": version, "python": sys.executable,
            "jobs": [outcomes[i] for i in range(len(request["jobs"]))]}


def main(argv: list[str]) -> int:
    # Never let this file's directory (the kfp_ci package) shadow the user's modules.
    if sys.path and os.path.abspath(sys.path[0] or ".") == _HERE:
        del sys.path[0]
    if len(argv) == 2 and argv[0] == "--child":
        with open(argv[1], encoding="utf-8") as fh:
            spec = json.load(fh)
        run_child(spec["job"], spec["opts"], spec["result"])
        return 0
    if len(argv) != 2:
        sys.stderr.write("usage: _worker.py REQUEST.json RESULT.json\n")
        return 2
    with open(argv[0], encoding="utf-8") as fh:
        request = json.load(fh)
    answer = run_zygote(request)
    with open(argv[1], "w", encoding="utf-8") as fh:
        json.dump(answer, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
