"""``LocalServer``: builds the store, executor, scheduler and ASGI app, and serves them with uvicorn."""

from __future__ import annotations

import importlib.util
import logging
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from kfp_ci.errors import UsageError
from kfp_ci.local._options import ServerOptions

if TYPE_CHECKING:
    from kfp_ci.local._store import Store

log = logging.getLogger("kfp_ci.local")


class LocalServer:
    """One embedded server: uvicorn in a background thread (``start``/``stop`` or a ``with`` block)."""

    def __init__(self, options: ServerOptions, host: str = "127.0.0.1", port: int = 0) -> None:
        self.options = options
        self.host = host
        self.port = port
        self.url = ""
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._store: Store | None = None
        self._parts: dict[str, Any] = {}

    # ------------------------------------------------------------------------------------------ building
    def build(self) -> Any:
        """Create the store, executor, scheduler and the ASGI app (not yet serving)."""
        from kfp_ci.local._app import Api
        from kfp_ci.local._compat import Compat
        from kfp_ci.local._executor import Executor
        from kfp_ci.local._model import Model
        from kfp_ci.local._outer import FaultControl, Faults, Outer
        from kfp_ci.local._scheduler import Scheduler
        from kfp_ci.local._store import Store

        opts = self.options
        # import what the first requests need now, so a burst of first calls does not wait on imports
        for module in ("starlette.concurrency", "starlette.formparsers", "starlette.requests", "kfp_ci.local._page"):
            importlib.import_module(module)
        store = Store(opts.data_dir)
        executor = Executor(store, execute=opts.execute, run_delay=opts.run_delay)
        executor.recover()
        model = Model(store, executor, Compat(opts.compat), multi_user=opts.multi_user, profiles=opts.profiles)
        app: Any = Api(opts, model)
        if has_module("kfp_ci.local._mlmd"):
            from starlette.routing import Route, Router

            from kfp_ci.local._mlmd import mlmd_routes

            routes = list(mlmd_routes(store, _run_reader(model) if opts.multi_user else None))
            prefixed = [Route("/pipeline" + r.path, r.endpoint, methods=sorted(r.methods or ()))
                        for r in routes if isinstance(r, Route)]
            app = Router(routes=[*routes, *prefixed], default=app)
        faults = Faults() if opts.faults else None
        if faults is not None:  # behind the login emulation: the same authentication as the API
            app = FaultControl(app, faults, expire_sessions=self.expire_sessions, require_user=opts.multi_user)
        self._login: Any = None
        if opts.auth != "none" and not has_module("kfp_ci.local._login"):
            log.warning("--auth %s needs the login emulation (kfp_ci.local._login), which is missing: serving "
                        "without login", opts.auth)
        if opts.auth != "none" and has_module("kfp_ci.local._login"):
            _login = importlib.import_module("kfp_ci.local._login")
            self._login = _login
            app = _login.wrap_login(app, opts)
        self._login_app = app
        outer = Outer(app, faults=faults, access_log=opts.access_log, expire_sessions=self.expire_sessions)
        scheduler = Scheduler(store, model.fire)
        self._store = store
        self._parts = {"executor": executor, "scheduler": scheduler, "faults": faults, "model": model}
        return outer

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the server is not started")
        return self._store

    # ---------------------------------------------------------------------------------------------- life
    def bind(self) -> None:
        """Listen on ``host:port`` now (port 0: any free one); sets ``port`` and ``url``."""
        if getattr(self, "_sock", None) is not None:
            return
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # answers go out as header + body writes: without TCP_NODELAY (inherited by accepted sockets on Linux)
        # Nagle and delayed ACKs add ~40 ms to every request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise UsageError(f"cannot listen on {self.host}:{self.port}: {exc.strerror}",
                             hint="choose another --port") from None
        sock.listen(128)
        self._sock: socket.socket | None = sock
        self.port = int(sock.getsockname()[1])
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{self.port}"

    def _uvicorn(self, app: Any) -> Any:
        import uvicorn

        # Keep idle connections 75 s (uvicorn's default is 5 s): kfp.Client's wait_for_run_completion polls every
        # 5 s on a pooled connection, and a server closing it at that very moment answers "Remote end closed
        # connection without response" (KFP itself sits behind Envoy, whose idle timeout is an hour).
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=5, timeout_keep_alive=75)
        return uvicorn.Server(config)

    def start(self) -> LocalServer:
        """Serve in a background thread; returns once the server answers."""
        self.bind()
        app = self.build()
        self._server = self._uvicorn(app)
        self._parts["scheduler"].start()
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="kfp-ci-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the embedded server did not start")
            time.sleep(0.01)
        return self

    def serve_forever(self) -> None:
        """Serve in this (main) thread until Ctrl-C / SIGTERM, then stop workers and close the store."""
        import signal

        self.bind()
        app = self.build()
        self._server = self._uvicorn(app)
        self._parts["scheduler"].start()
        # uvicorn re-raises the stop signal after its graceful shutdown; a no-op handler lets us then stop the run
        # workers (in their own sessions) instead of dying with them orphaned
        previous: dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda signum, frame: None)
        try:
            self._server.run(sockets=[self._sock])
        finally:
            self._shutdown_parts()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        self._shutdown_parts()

    def _shutdown_parts(self) -> None:
        sock, self._sock = getattr(self, "_sock", None), None
        if sock is not None:
            sock.close()
        parts, self._parts = self._parts, {}
        if parts:
            parts["scheduler"].stop()
            parts["executor"].shutdown()
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -------------------------------------------------------------------------------------------- faults
    def add_fault(self, **fault: Any) -> None:
        """Fail the next ``count`` requests matching ``match`` (see the faults endpoint). Needs ``faults=True``."""
        faults = self._parts.get("faults")
        if faults is None:
            raise RuntimeError("start the server with faults=True (--faults) to inject faults")
        if fault.get("action") == "expire_sessions" and "match" not in fault:
            self.expire_sessions()
            return
        faults.add(**fault)

    def clear_faults(self) -> None:
        faults = self._parts.get("faults")
        if faults is not None:
            faults.clear()

    def expire_sessions(self) -> None:
        """Invalidate every login session (delegates to the login emulation; no-op without one)."""
        login = getattr(self, "_login", None)
        if login is None:
            return
        for name in ("expire_all_sessions", "expire_all", "expire_sessions"):
            fn = getattr(login, name, None)
            if callable(fn):
                fn(self._login_app)
                return

    def scheduler_tick(self) -> None:
        """Fire due recurring runs now (tests)."""
        self._parts["scheduler"].run_due(time.time())


def _run_reader(model: Any) -> Any:
    """``can_read(user, run_id)`` for ML Metadata: the run exists and is in one of the user's namespaces."""
    from kfp_ci.local._http import HttpError

    def can_read(user: str | None, run_id: str) -> bool:
        run = model.store.get("run", run_id)
        if run is None:
            return False
        try:
            model.authorize(user, run.get("_ns", ""))
        except HttpError:
            return False
        return True
    return can_read


def has_module(name: str) -> bool:
    """Whether ``name`` can be imported (found without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False
