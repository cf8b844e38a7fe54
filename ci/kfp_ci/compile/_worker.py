"""The compiling side of ``kfp-ci compile``: a zygote that imports kfp once, then one child per source module.

This file runs as a standalone script in the interpreter that has kfp installed (``python _worker.py
REQUEST RESULT``); it imports nothing from kfp_ci, so any interpreter with kfp (2.x or 1.8) can run it.

The zygote imports kfp, then forks one child per source module (``--jobs`` at a time; where ``fork`` is not
available, or with ``KFP_CI_COMPILE_START=spawn``, it starts ``python _worker.py --child JOB``
instead). A child imports only its module, the
way ``kfp dsl compile`` does (its directory first on ``sys.path``, ``__import__`` of the file's stem), compiles
the requested pipeline functions into a scratch directory and writes a JSON result: the compiled bytes, the
pipeline names, errors located in the user's code, and what the module read (files, directory listings,
environment variables: for the cache). Each child is a process group of its own, killed whole on a timeout.
A child that raises, exits, kills itself or hangs past the timeout fails only its own pipelines.
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
    """The deepest frame in the user's code (the source or a project module it imports), else the ``def`` line.

    An error raised while an imported helper module runs (``components.py``: an untyped component parameter) is
    located in that helper, not at the ``import`` line of every pipeline file that imports it.
    """
    if isinstance(exc, SyntaxError) and exc.filename and os.path.exists(exc.filename):
        return os.path.abspath(exc.filename), exc.lineno
    source = os.path.abspath(job["source"])
    best: tuple[str, int | None, str] | None = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        filename = os.path.abspath(frame.f_code.co_filename)
        if filename == source or _is_user_file(filename, root):
            best = (filename, lineno, frame.f_code.co_name)
    if best is not None:
        filename, located, code_name = best
        if sys.version_info < (3, 11) and code_name == "<module>":
            located = _decorator_line(filename, located)
        return filename, located
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


_O_ACCMODE = getattr(os, "O_ACCMODE", 3)


class _Recorder:
    """Everything a module reads while it is imported and compiled: files, directory listings, environment.

    An audit hook sees every ``open`` (``open()``, ``io.open``, ``os.open``, ``pathlib``...) and directory
    listing; ``os.environ`` is swapped for a mapping that remembers the names read. Files of the interpreter and
    of installed packages are left out (kfp's version and the interpreter are in the cache key), and so are the
    scratch files kfp-ci itself writes.
    """

    def __init__(self, skip: list[str]) -> None:
        import site
        import sysconfig

        prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, _HERE, *skip}
        for name in ("stdlib", "platstdlib", "purelib", "platlib"):
            try:
                prefixes.add(sysconfig.get_paths()[name])
            except KeyError:
                pass
        try:
            prefixes.update(site.getsitepackages())
        except AttributeError:
            pass
        self.skip = tuple(os.path.abspath(p).rstrip(os.sep) + os.sep for p in prefixes if p)
        self.skip_exact = {os.path.abspath(p) for p in skip}
        self.files: set[str] = set()
        self.dirs: set[str] = set()
        self.env: set[str] = set()

    def _wanted(self, path: Any) -> str | None:
        if isinstance(path, int):
            return None
        name = os.path.abspath(os.fsdecode(path))
        if name.startswith(self.skip) or name in self.skip_exact or name.startswith(("/dev/", "/proc/", "/sys/")):
            return None
        parts = name.split(os.sep)
        if "site-packages" in parts or "dist-packages" in parts or "__pycache__" in parts:
            return None
        return name

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            try:
                path, mode, flags = args
                if mode is None:
                    if (flags or 0) & _O_ACCMODE == os.O_WRONLY:
                        return
                elif "r" not in mode and "+" not in mode:
                    return
                name = self._wanted(path)
                if name is not None:
                    self.files.add(name)
            except Exception:  # noqa: S110 - recording must never break the user's code
                pass
        elif event in ("os.listdir", "os.scandir"):
            try:
                # the import system lists sys.path directories itself: not a read of the module's
                if sys._getframe(1).f_code.co_filename.startswith("<frozen importlib"):
                    return
                name = self._wanted(args[0] if args and args[0] is not None else ".")
                if name is not None:
                    self.dirs.add(name)
            except Exception:  # noqa: S110
                pass

    def install(self) -> None:
        sys.addaudithook(self._hook)
        recorder = self
        environ_type = type(os.environ)

        class _RecordingEnviron(environ_type):  # type: ignore[valid-type,misc]
            def __getitem__(self, key: Any) -> Any:
                recorder.env.add(str(key))
                return super().__getitem__(key)

            def __contains__(self, key: Any) -> bool:
                recorder.env.add(str(key))
                return bool(super().__contains__(key))

        try:
            os.environ.__class__ = _RecordingEnviron
        except TypeError:
            pass


def _in_order(value: Any, template: Any) -> Any:
    """``value`` with every dict's keys in ``template``'s order (the source's), any others after them, sorted."""
    if isinstance(value, dict):
        order = list(template) if isinstance(template, dict) else []
        keys = [k for k in order if k in value] + sorted((k for k in value if k not in order), key=repr)
        return {k: _in_order(value[k], template.get(k) if isinstance(template, dict) else None) for k in keys}
    if isinstance(value, list):
        items = template if isinstance(template, list) and len(template) == len(value) else [None] * len(value)
        return [_in_order(v, t) for v, t in zip(value, items)]  # noqa: B905 - same length; runs on Python < 3.10 too
    return value


def _source_order_defaults(data: bytes, defaults: dict[str, Any]) -> bytes:
    """kfp 2's header comment lists ``dict`` defaults in the key order of its protobuf runtime, which the upb
    extension varies from run to run; write them in the source's order (as the pure-Python runtime does)."""
    import ast
    import re

    pattern = re.compile(rb"^(#    (\S+): \S+ \[Default: )(.*)(\])$")
    lines = data.split(b"\n")
    for index, line in enumerate(lines):
        if not line.startswith(b"#"):
            break
        match = pattern.match(line)
        if match is None or b"{" not in match.group(3):
            continue
        name = match.group(2).decode("utf-8", "replace")
        try:
            value = ast.literal_eval(match.group(3).decode("utf-8"))
        except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError):
            continue
        lines[index] = match.group(1) + str(_in_order(value, defaults.get(name))).encode("utf-8") + match.group(4)
    return b"\n".join(lines)


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
        inputs = getattr(getattr(obj, "component_spec", None), "inputs", None) or {}
        defaults = {key: params.get(key, getattr(spec, "default", None)) for key, spec in inputs.items()}
        with open(path, "rb") as fh:
            data = fh.read()
        if data.startswith(b"#") and b"[Default: " in data:
            data = _source_order_defaults(data, defaults)
        return {"function": target["function"], "ok": True, "pipeline_name": str(name),
                "data": data.decode("utf-8")}
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


def _definition(obj: Any) -> tuple[str | None, int | None]:
    """The file and first line (decorators included) of the function a pipeline object wraps."""
    func = getattr(obj, "pipeline_func", None) or obj
    func = getattr(func, "__wrapped__", func)
    code = getattr(func, "__code__", None)
    if code is None:
        return None, None
    return os.path.abspath(code.co_filename), code.co_firstlineno


def _pipelines_in(module: Any, major: int, decorated: list[Any]) -> list[tuple[str, Any]]:
    """What kfp sees in an imported module: kfp 2's ``GraphComponent`` objects among its attributes; for kfp 1.8,
    the attributes that are functions ``@dsl.pipeline`` decorated (as ``dsl-compile`` records them)."""
    found: list[tuple[str, Any]] = []
    if major >= 2:
        from kfp.dsl import graph_component

        for attr in dir(module):
            obj = getattr(module, attr, None)
            if isinstance(obj, graph_component.GraphComponent):
                found.append((attr, obj))
        return found
    ids = {id(f) for f in decorated}
    for attr in dir(module):
        obj = getattr(module, attr, None)
        if id(obj) in ids:
            found.append((attr, obj))
    return found


def run_child(job: dict[str, Any], opts: dict[str, Any], result_path: str) -> None:
    """Import one module, compile its pipelines, write the JSON result. Runs in its own process.

    ``job["discover"]``: compile every pipeline kfp sees in the module after importing it (optionally only the
    one named ``job["only"]``); ``job["targets"]`` are then only hints (names and lines found by reading the
    source). Otherwise compile exactly ``job["targets"]``.
    """
    import importlib
    import tempfile

    root = [opts["project_root"], os.path.dirname(os.path.abspath(job["source"]))]
    scratch_dir = tempfile.mkdtemp(prefix="kfp-ci-")
    recorder = _Recorder([scratch_dir, os.path.dirname(os.path.abspath(result_path))])
    recorder.install()
    import kfp
    import kfp.compiler

    major = int(str(kfp.__version__).split(".")[0])
    decorated: list[Any] = []
    if major >= 2:
        from kfp.dsl.pipeline_context import Pipeline

        Pipeline._execution_caching_default = not opts.get("disable_caching", False)
    else:
        from kfp.dsl import _pipeline as v1_pipeline

        def _record(func: Any) -> Any:
            decorated.append(func)
            return func

        v1_pipeline._pipeline_decorator_handler = _record
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
    targets: list[dict[str, Any]] = list(job["targets"])
    if job.get("discover") and module_error is None:
        hints = {t["function"]: t for t in targets}
        targets = []
        for attr, obj in _pipelines_in(module, major, decorated):
            if job.get("only") and attr != job["only"]:
                continue
            file, line = _definition(obj)
            hint = hints.get(attr, {})
            target = {"function": attr, "suffix": hint.get("suffix") or job.get("suffix") or ".yaml",
                      "line": line if file == source else (hint.get("line") or line)}
            if file and file != source:
                target["defined_in"] = file
                target["defined_line"] = line
            targets.append(target)
    elif job.get("discover") and not targets:
        targets = [{"function": job.get("only") or stem, "line": job.get("line"), "suffix": ".yaml"}]
    try:
        for target in targets:
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
                entry = _compile_one(kfp, major, obj, target, opts, scratch_dir)
            except BaseException as exc:
                entry = {"function": target["function"], "ok": False, "error": _error(exc, job, root, def_line)}
            entry["line"] = def_line
            if target.get("defined_in"):
                entry["defined_in"] = target["defined_in"]
                entry["defined_line"] = target.get("defined_line")
            results.append(entry)
    finally:
        import shutil

        shutil.rmtree(scratch_dir, ignore_errors=True)
    deps = set(recorder.files)
    for mod in list(sys.modules.values()):
        filename = getattr(mod, "__file__", None)
        if filename and filename.endswith(".py") and _is_user_file(filename, root) and os.path.isfile(filename):
            deps.add(os.path.abspath(filename))
    deps.add(source)
    env_names = sorted(recorder.env)
    payload = {"results": results, "deps": sorted(deps), "dirs": sorted(recorder.dirs), "env": env_names}
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
            if pid == 0:  # the child: a process group of its own, so that a timeout kills all it started
                code = 0
                try:
                    os.setpgid(0, 0)
                    import signal

                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
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
            try:
                os.setpgid(pid, pid)
            except OSError:  # the child did it first, or already exited
                pass
        else:  # spawn fallback
            request = os.path.join(workdir, f"job-{index}.request.json")
            with open(request, "w", encoding="utf-8") as fh:
                json.dump({"job": job, "opts": opts, "result": self.result}, fh)
            with open(self.log, "wb") as log:
                self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", request],
                                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
                self.pid = self.proc.pid

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

    def kill_group(self) -> None:
        """Kill what is left of the child's process group (what the module started: no orphans)."""
        import signal

        if self.pid and hasattr(os, "killpg"):
            try:
                os.killpg(self.pid, getattr(signal, "SIGKILL", signal.SIGTERM))
            except (ProcessLookupError, PermissionError):
                pass

    def kill(self) -> None:
        self.kill_group()
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
    import signal

    def _stop(signum: int, frame: Any) -> None:  # the driver gives up (its timeout, Ctrl-C): take the children along
        for child in running:
            child.kill_group()
        os._exit(128 + signum)

    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, _stop)
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
            child.kill_group()
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
