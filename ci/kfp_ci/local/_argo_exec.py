"""One Argo container template run on the host, for the KFP v1 interpreter (``_argo``).

The image is not pulled: the container's command and args run on the host, in the task's own folder, with the
server's Python as ``python``/``python3`` (as ``kfp.local``'s subprocess runner does for v2). The paths the template
declares (input artifacts, output parameters and artifacts) are mapped into ``<task dir>/fs/`` wherever they appear
in the command, the args and the environment, and mapped back in messages, so a component sees its files and a person
reads the container's paths. What the host cannot do (volumes, sidecars, Kubernetes resources, accelerators, a
command only the image has) fails the task with one line saying so.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfp_ci.local._worker import strip_ansi

NOT_PULLED = "kfp-ci serve does not pull images; the container's command runs on the host"
_SCHEDULING_RESOURCES = ("cpu", "memory", "ephemeral-storage")
# what images call their Python: all of them run the server's (python, python3, python3.7 ... python3.14)
_PYTHONS = ("python", "python3", *(f"python3.{minor}" for minor in range(5, 15)))
_NO_PACKAGE = re.compile(r"No matching distribution found for (\S+)")
_NO_MODULE = re.compile(r"ModuleNotFoundError: No module named '([^']+)'")


@dataclass
class Outcome:
    """What one container run produced: ``ok``, the one-line ``error``, output parameters and artifact paths."""

    ok: bool
    error: str = ""
    exit_code: int | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)


def unsupported(template: Mapping[str, Any]) -> str:
    """Why this template cannot run on the host ('' when it can): one sentence naming the feature."""
    name = template.get("name", "?")
    if "resource" in template:
        action = (template.get("resource") or {}).get("action", "create")
        return (f"template {name} is a Kubernetes resource ({action}, e.g. dsl.VolumeOp or dsl.ResourceOp); "
                "the local runner has no cluster to create it in")
    for kind in ("script", "steps", "suspend", "containerSet", "http", "plugin", "data"):
        if kind in template:
            return f"template {name} is an Argo '{kind}' template; the local runner runs container and DAG templates"
    if "container" not in template:
        return f"template {name} has no container"
    container = template.get("container") or {}
    if template.get("volumes") or container.get("volumeMounts") or container.get("volumeDevices"):
        mounts = ", ".join(str(m.get("mountPath", "?")) for m in container.get("volumeMounts") or []) or "volumes"
        return (f"template {name} mounts volumes ({mounts}); the local runner has no Kubernetes volumes "
                "(pass data as artifacts, InputPath/OutputPath)")
    if template.get("sidecars"):
        names = ", ".join(str(s.get("name", "?")) for s in template["sidecars"])
        return f"template {name} has sidecars ({names}); the local runner runs only the main container"
    if template.get("initContainers"):
        return f"template {name} has init containers; the local runner runs only the main container"
    resources = container.get("resources") or {}
    wanted = sorted({k for part in ("limits", "requests") for k in (resources.get(part) or {})
                     if k not in _SCHEDULING_RESOURCES})
    if wanted:
        return (f"template {name} needs {', '.join(wanted)} (set_gpu_limit or add_resource_*); the local runner "
                "has no such devices (cpu and memory requests are ignored)")
    for env in container.get("env") or []:
        if "valueFrom" in env:
            return (f"template {name} reads env {env.get('name')} from a Kubernetes secret, config map or field; "
                    "the local runner has none (use a pipeline parameter)")
    if container.get("envFrom"):
        return (f"template {name} takes its environment from a Kubernetes secret or config map; "
                "the local runner has none")
    if not container.get("command"):
        image = container.get("image", "?")
        return (f"template {name} has no command: it runs the entrypoint of image {image}, and {NOT_PULLED} "
                "(give the ContainerOp a command)")
    for out in (template.get("outputs") or {}).get("parameters") or []:
        source = out.get("valueFrom") or {}
        if "path" not in source and "value" not in out:
            return f"template {name}: output parameter {out.get('name')} is not read from a file"
    for art in (template.get("inputs") or {}).get("artifacts") or []:
        if not art.get("path"):
            return f"template {name}: input artifact {art.get('name')} has no path"
    return ""


class PathMap:
    """Container paths -> host paths under ``root``; rewrites strings both ways."""

    def __init__(self, root: Path, paths: list[str]) -> None:
        self.root = root
        self.paths = sorted({p for p in paths if p.startswith("/")}, key=len, reverse=True)
        self._to_host = (re.compile(r"(?<![\w.\-/])(" + "|".join(re.escape(p.rstrip("/") or "/")
                                                                  for p in self.paths) + r")(?![\w.\-])")
                         if self.paths else None)

    def host(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def rewrite(self, text: str) -> str:
        if self._to_host is None:
            return text
        return self._to_host.sub(lambda m: str(self.host(m.group(1))), text)

    def back(self, text: str) -> str:
        """A message with the host paths of this task shown as the container's."""
        return text.replace(str(self.root), "")


def shim_dir(base: Path, python: str) -> Path:
    """A folder (first on the tasks' PATH) where ``python``, ``python3`` and ``python3.X`` are ``python`` (the
    server's interpreter)."""
    folder = base / ".bin"
    folder.mkdir(parents=True, exist_ok=True)
    script = f"#!/bin/sh\nexec {shlex.quote(python)} \"$@\"\n"  # exec by its path: a venv stays a venv
    for name in _PYTHONS:
        shim = folder / name
        if not shim.exists():
            shim.write_text(script)
            shim.chmod(0o755)
    return folder


def run_container(template: Mapping[str, Any], *, task_dir: Path, inputs: Mapping[str, Path | str],
                  substitute: Callable[[str], str], bin_dir: Path, log_path: Path, slots: threading.Semaphore,
                  timeout: float | None = None, python: str = sys.executable) -> Outcome:
    """Run ``template``'s container on the host. ``inputs``: input artifact name -> host path (or raw text);
    ``substitute(text) -> text`` resolves ``{{...}}`` (parameters, workflow, pod name)."""
    container = template.get("container") or {}
    declared_in = (template.get("inputs") or {}).get("artifacts") or []
    out_params = (template.get("outputs") or {}).get("parameters") or []
    out_arts = (template.get("outputs") or {}).get("artifacts") or []
    fs = task_dir / "fs"
    paths = [str(a["path"]) for a in declared_in] + [str((p.get("valueFrom") or {}).get("path", ""))
                                                      for p in out_params] + [str(a.get("path", "")) for a in out_arts]
    workdir = str(container.get("workingDir") or "")
    if workdir:
        paths.append(workdir)
    pmap = PathMap(fs, paths)
    fs.mkdir(parents=True, exist_ok=True)
    try:
        for art in declared_in:
            _materialise(art, inputs.get(str(art["name"])), pmap.host(str(art["path"])), substitute)
    except _InputMissing as exc:
        return Outcome(False, str(exc))
    for path in paths[len(declared_in):]:
        if path.startswith("/"):
            pmap.host(path).parent.mkdir(parents=True, exist_ok=True)
    argv = [pmap.rewrite(substitute(str(a))) for a in [*container.get("command", []), *container.get("args", [])]]
    program = argv[0]
    if Path(program).name in _PYTHONS:  # also /usr/local/bin/python3 and the like
        argv[0] = python
    elif shutil.which(program, path=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}") is None:
        return Outcome(False, f"cannot run locally: command {program!r} is not on this host: it needs the image "
                              f"{container.get('image', '?')}, and {NOT_PULLED}")
    tmp = task_dir / "tmp"
    tmp.mkdir(exist_ok=True)
    cwd = pmap.host(workdir) if workdir.startswith("/") else task_dir
    cwd.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", TMPDIR=str(tmp), PYTHONUNBUFFERED="1",
               PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONSTARTUP", None)
    for item in container.get("env") or []:
        env[str(item["name"])] = pmap.rewrite(substitute(str(item.get("value", ""))))
    with slots, open(log_path, "wb") as log:
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT)
        except OSError as exc:
            return Outcome(False, pmap.back(f"cannot run locally: cannot start {program!r}: {exc.strerror or exc}"))
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(proc)
            return Outcome(False, f"the task ran longer than its timeout ({timeout:g} s) and was stopped", -9)
    if code != 0:
        return Outcome(False, _failure(log_path, code, pmap, container), code)
    outcome = Outcome(True, exit_code=0)
    for param in out_params:
        source = param.get("valueFrom") or {}
        if "path" not in source:
            outcome.parameters[str(param["name"])] = str(param.get("value", ""))
            continue
        host = pmap.host(str(source["path"]))
        try:
            text = host.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            if "default" in source:
                outcome.parameters[str(param["name"])] = str(source["default"])
                continue
            return Outcome(False, f"output parameter {param['name']}: the task did not write {source['path']}", 0)
        outcome.parameters[str(param["name"])] = text[:-1] if text.endswith("\n") else text
    for art in out_arts:
        host = pmap.host(str(art["path"]))
        if host.exists():
            outcome.artifacts[str(art["name"])] = host
        elif not art.get("optional"):
            return Outcome(False, f"output artifact {art['name']}: the task did not write {art['path']}", 0)
    return outcome


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """Kill ``proc`` and its descendants (the task shares the worker's process group, which terminate kills)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    pending, found = [proc.pid], []
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, []))
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    proc.wait()


class _InputMissing(Exception):
    pass


def _materialise(art: Mapping[str, Any], given: Path | str | None, target: Path,
                 substitute: Callable[[str], str]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if given is None:
        raw = art.get("raw") or {}
        if "data" in raw:
            target.write_text(substitute(str(raw["data"])), encoding="utf-8")
            return
        if art.get("optional"):
            return
        raise _InputMissing(f"input artifact {art.get('name')} has no value")
    if isinstance(given, str):
        target.write_text(given, encoding="utf-8")
    elif given.is_dir():
        shutil.copytree(given, target, dirs_exist_ok=True)
    else:
        shutil.copyfile(given, target)


def _failure(log_path: Path, code: int, pmap: PathMap, container: Mapping[str, Any]) -> str:
    """The component's exception (last line of its traceback) or the output's last line, with the exit code."""
    try:
        lines = [strip_ansi(x).rstrip() for x in log_path.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        lines = []
    lines = [x for x in lines if x.strip()]
    for line in lines:
        missing = _NO_PACKAGE.search(line)
        if missing:
            return (f"cannot run locally: package {missing.group(1)} is not installed where kfp-ci serve runs, and "
                    "the local runner installs no packages (install the component's packages_to_install there)")
    message = ""
    starts = [i for i, x in enumerate(lines) if x.startswith("Traceback (most recent call last)")]
    if starts:
        tail = lines[starts[-1] + 1:]
        body = [x for x in tail if not x.startswith((" ", "\t"))]
        message = " ".join(" ".join(body[:4]).split())
    elif lines:
        message = " ".join(lines[-1].split())
    module = _NO_MODULE.search(message)
    if module:
        message += (f" - the component runs with kfp-ci serve's Python: install {module.group(1).split('.')[0]} "
                    "where the server runs")
    if code == 127:
        hint = (f"a command is not on this host (it may need the image {container.get('image', '?')}, and "
                f"{NOT_PULLED})")
        message = f"{message} - {hint}" if message else hint
    message = pmap.back(message)[:2000]
    return f"{message} (exit code {code})" if message else f"the container exited with code {code}"
