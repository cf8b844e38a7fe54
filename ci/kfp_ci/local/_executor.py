"""Run execution: one worker process per run (``_worker``), never blocking the API.

States: PENDING -> RUNNING -> SUCCEEDED | FAILED; terminate: CANCELING -> CANCELED (the worker's whole
process group is killed). With ``execute=False`` a run succeeds after ``run_delay`` seconds.

Workers do not outlive the server: each holds the read end of a pipe whose only write end is the server's, and
kills its own process group (itself and the task processes it started) when that pipe closes, which the kernel does
at once when the server dies, even by SIGKILL. A run ended by a restart is FAILED with no task left RUNNING.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import yaml

from kfp_ci._yaml import dump_yaml, load_docs
from kfp_ci.local import _argo
from kfp_ci.local._store import Record, Store, now

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED", "SKIPPED")
RESTART_ERROR = "The run was interrupted by a restart of the embedded server (kfp-ci serve); start it again."


def set_state(run: Record, state: str, error: str = "") -> None:
    """Move ``run`` to ``state`` and append the change to its history (in place); a run that ends FAILED or
    CANCELED ends its unfinished tasks the same way."""
    t = now()
    run["state"] = state
    entry: Record = {"update_time": t, "state": state}
    if error:
        entry["error"] = error
        run["error"] = error
    run.setdefault("state_history", []).append(entry)
    if state in TERMINAL:
        run["finished_at"] = t
    if state in ("FAILED", "CANCELED"):
        for task in run.get("tasks") or []:
            if isinstance(task, dict) and task.get("state") not in TERMINAL:
                task.update(state=state, end=task.get("end") or t)
                if "phase" in task:  # an Argo node (KFP v1 run)
                    task["phase"] = "Failed"
                if state == "FAILED" and not task.get("error"):
                    task["error"] = error or "the run ended before this task finished"


def package_problem(content: bytes) -> str:
    """Why the local runner cannot execute this package ('' when it looks runnable)."""
    try:
        docs = load_docs(content)
    except yaml.YAMLError as exc:
        return f"the pipeline package is not valid YAML: {str(exc).splitlines()[0]}"
    if not docs or not isinstance(docs[0], dict):
        return "the pipeline package is empty"
    first = docs[0]
    if _argo.is_workflow(first):  # KFP v1 (kfp 1.8): interpreted by _argo
        return _argo.problem(first)
    if "root" not in first or "deploymentSpec" not in first:
        return "the pipeline package is not compiled KFP v2 IR (no 'root' or 'deploymentSpec')"
    return ""


class Executor:
    """Starts, watches and kills run workers; writes every state change to the store."""

    def __init__(self, store: Store, *, execute: bool, run_delay: float) -> None:
        self.store = store
        self.execute = execute
        self.run_delay = run_delay
        self.runs_dir = store.data_dir / "runs"
        self._lock = threading.Lock()
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._cancel: dict[str, threading.Event] = {}
        self._threads: list[threading.Thread] = []
        self._closing = False
        # --no-execute: one ticker thread moves simulated runs along (no thread per run)
        self._cond = threading.Condition()
        self._due: list[tuple[float, int, str, str]] = []
        self._order = itertools.count()
        self._ticker: threading.Thread | None = None
        # the lifeline: workers read its read end and stop when the write end, held only here, closes
        self._lifeline_read, self._lifeline_write = os.pipe() if execute else (-1, -1)

    # ---------------------------------------------------------------------------------------------- life
    def recover(self) -> int:
        """Mark runs cut by a previous shutdown or crash FAILED. Returns how many."""
        count = 0
        for run in self.store.unfinished_runs(terminal=TERMINAL):
            if run.get("state") not in TERMINAL:
                def fail(r: Record) -> None:
                    set_state(r, "FAILED", RESTART_ERROR)
                self.store.update("run", run["id"], fail)
                count += 1
        return count

    def shutdown(self) -> None:
        """Kill every worker (and its children), mark their runs FAILED, wait for the watcher threads."""
        with self._lock:
            self._closing = True
            procs = dict(self._procs)
            events = list(self._cancel.values())
        with self._cond:
            self._cond.notify_all()
        if self._ticker is not None:
            self._ticker.join(timeout=10)
        for event in events:
            event.set()
        for proc in procs.values():
            _kill_group(proc)
        for thread in list(self._threads):
            thread.join(timeout=10)
        for fd in (self._lifeline_read, self._lifeline_write):
            if fd >= 0:
                os.close(fd)
        self._lifeline_read = self._lifeline_write = -1

    def active(self) -> int:
        with self._lock:
            return sum(1 for t in self._threads if t.is_alive())

    # ----------------------------------------------------------------------------------------------- runs
    def start(self, run_id: str, package: bytes | None, params: dict[str, Any]) -> None:
        if not self.execute:
            return self._simulate(run_id)
        with self._lock:
            if self._closing:
                return
            event = threading.Event()
            self._cancel[run_id] = event
            thread = threading.Thread(target=self._supervise, args=(run_id, package, params, event),
                                      name=f"run-{run_id[:8]}", daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _simulate(self, run_id: str) -> None:
        t = now()
        with self._cond:
            if self._closing:
                return
            heapq.heappush(self._due, (t, next(self._order), run_id, "RUNNING"))
            heapq.heappush(self._due, (t + self.run_delay, next(self._order), run_id, "SUCCEEDED"))
            if self._ticker is None:
                self._ticker = threading.Thread(target=self._tick, name="kfp-ci-no-execute", daemon=True)
                self._ticker.start()
            self._cond.notify()

    def _tick(self) -> None:
        while True:
            with self._cond:
                while not self._closing and (not self._due or self._due[0][0] > now()):
                    self._cond.wait(timeout=max(0.0, self._due[0][0] - now()) if self._due else None)
                if self._closing:
                    return
                _, _, run_id, state = heapq.heappop(self._due)
            try:
                # nothing ran: the record says so (``executed: false``), and no task claims to have run
                extra: dict[str, Any] = {"executed": False} if state == "SUCCEEDED" else {}
                self._transition(run_id, state, "", **extra)
            except sqlite3.ProgrammingError:  # the store is closed: the server is stopping
                return

    def terminate(self, run_id: str) -> None:
        if not self.execute:
            return self._canceled(run_id)
        with self._lock:
            event = self._cancel.get(run_id)
            proc = self._procs.get(run_id)
        if event is not None:
            event.set()
        if proc is not None:
            _kill_group(proc)

    def _transition(self, run_id: str, state: str, error: str = "", **fields: Any) -> None:
        def change(r: Record) -> None:
            if r.get("state") in TERMINAL:
                return
            if r.get("state") == "CANCELING" and state not in ("CANCELED",):
                return
            r.update(fields)
            set_state(r, state, error)
        self.store.update("run", run_id, change)

    def _canceled(self, run_id: str) -> None:
        def change(r: Record) -> None:
            if r.get("state") not in TERMINAL:
                for task in r.get("tasks", []):
                    if task.get("state") == "RUNNING":
                        task.update(state="CANCELED", end=now())
                        if "phase" in task:  # an Argo node (_argo): terminated as Argo marks it
                            task.update(phase="Failed", message="terminated")
                set_state(r, "CANCELED")
        self.store.update("run", run_id, change)

    def _stopped(self, run_id: str) -> None:
        """A run cut short: CANCELED when terminated, FAILED when the server is shutting down."""
        if self._closing:
            self._transition(run_id, "FAILED", RESTART_ERROR)
        else:
            self._canceled(run_id)

    def _supervise(self, run_id: str, package: bytes | None, params: dict[str, Any], cancel: threading.Event) -> None:
        try:
            self._transition(run_id, "RUNNING")
            if cancel.is_set():
                return self._stopped(run_id)
            if not self.execute:
                if cancel.wait(self.run_delay):
                    return self._stopped(run_id)
                return self._transition(run_id, "SUCCEEDED")
            problem = package_problem(package or b"")
            if problem:
                return self._transition(run_id, "FAILED", f"Cannot execute this run locally: {problem}.")
            self._run_worker(run_id, package or b"", params, cancel)
        except Exception as exc:
            self._transition(run_id, "FAILED", f"internal error of the embedded server: {exc}")
        finally:
            with self._lock:
                self._cancel.pop(run_id, None)
                self._procs.pop(run_id, None)

    def _run_worker(self, run_id: str, package: bytes, params: dict[str, Any], cancel: threading.Event) -> None:
        run_dir = self.runs_dir / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "result.json").unlink(missing_ok=True)  # a retried run's previous attempt
        first = next(iter(load_docs(package)))
        (run_dir / "pipeline.yaml").write_text(dump_yaml(first))
        (run_dir / "params.json").write_text(json.dumps(params))
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("PYTHONSTARTUP", None)
        with open(run_dir / "log.txt", "wb") as log:
            with self._lock:
                if self._closing or cancel.is_set():
                    return self._stopped(run_id)
                worker = "kfp_ci.local._argo" if _argo.is_workflow(first) else "kfp_ci.local._worker"
                proc = subprocess.Popen(
                    [sys.executable, "-m", worker, str(run_dir), str(self._lifeline_read)],
                    cwd=run_dir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=env, start_new_session=True, pass_fds=(self._lifeline_read,),
                )
                self._procs[run_id] = proc
            while True:
                try:
                    proc.wait(timeout=0.2)
                    break
                except subprocess.TimeoutExpired:
                    self._sync_tasks(run_id, run_dir)
                    if cancel.is_set():
                        _kill_group(proc)
        result = _read_result(run_dir)
        self._sync_tasks(run_id, run_dir, result)
        if cancel.is_set():
            return self._stopped(run_id)
        self.store.set_run_artifacts(run_id, [dict(a, run_id=run_id) for a in result.get("artifacts", [])])
        reported = {"metrics": result["metrics"]} if result.get("metrics") else {}  # KFP v1 run.metrics (_argo)
        if result.get("ok") and proc.returncode == 0:
            return self._transition(run_id, "SUCCEEDED", **reported)
        error = result.get("error") or f"the run worker exited with code {proc.returncode}"
        self._transition(run_id, "FAILED", error, **reported)  # the component's exception; no server-local path

    def _sync_tasks(self, run_id: str, run_dir: Path, result: dict[str, Any] | None = None) -> None:
        result = result if result is not None else _read_result(run_dir)
        tasks = result.get("tasks")
        if not tasks:
            return

        def change(r: Record) -> None:
            r["tasks"] = tasks
        self.store.update("run", run_id, change)


def _read_result(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / "result.json").read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait(timeout=5)
