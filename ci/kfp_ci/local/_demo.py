"""``kfp-ci demo``: the whole CI flow on the examples, against an embedded server with Dex login.

It runs the very commands a CI job runs, printing each one first: compile, login, deploy with
``--run --wait``, the same deploy again (unchanged), a schedule, and status. It ends by saying where to
look: the local server's page. In a terminal the server then stays up until Ctrl-C; under CI (``CI`` set) or with
``--exit`` it stops at once.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import click

from kfp_ci import _console
from kfp_ci.errors import KfpCiError, UsageError
from kfp_ci.local._command import require_local_extra
from kfp_ci.local._options import ServerOptions
from kfp_ci.local._server import LocalServer

__all__ = ["demo_command", "find_examples"]

DEMO_USER = "user@example.com"
DEMO_PASSWORD = "12341234"  # noqa: S105 - the embedded server's documented demo account, not a secret


def find_examples(root: Path | None = None) -> Path | None:
    """The examples' ``pyproject.toml`` (its ``[tool.kfp-ci]`` declares the example pipelines)."""
    for base in ([root] if root else [Path.cwd() / "examples", Path(__file__).resolve().parents[3] / "examples"]):
        candidate = base / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


@contextmanager
def _env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _kfp_ci(main: click.Command, args: Sequence[str], *, allow: Sequence[int] = (0,)) -> int:
    """Run one kfp-ci command in this process with the CLI's ``main``, exactly as a CI step would, showing it first."""
    _console.out("")
    _console.out(f"$ kfp-ci {shlex.join(args)}")
    try:
        main(list(args), prog_name="kfp-ci", standalone_mode=False)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0) if not isinstance(exc.code, str) else 1
    if code not in allow:
        command = next((a for a in args if a in ("compile", "login", "deploy", "schedule", "status")), args[0])
        raise _StepFailed(f"demo step 'kfp-ci {command}' failed with exit code {code}")
    return code


class _StepFailed(KfpCiError):
    exit_code = 1


def keeps_serving(*, keep_serving: bool, exit_at_end: bool, env: Mapping[str, str], interactive: bool) -> bool:
    """Whether the demo keeps its server up at the end: in a terminal (not under CI), or when asked to."""
    if exit_at_end:
        return False
    if keep_serving:
        return True
    ci = env.get("CI", "").strip().lower()
    return interactive and ci in ("", "0", "false", "no")


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def demo_command(main: click.Command, data_dir: Path, port: int = 0, keep_serving: bool = False,
                 exit_at_end: bool = False) -> int:
    require_local_extra("demo", "local,demo")
    config = find_examples()
    if config is None:
        raise UsageError("no examples found: run kfp-ci demo from the kfp-ci source tree (examples/pyproject.toml)")
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    out_dir = data_dir / "compiled"
    started = time.monotonic()
    options = ServerOptions(data_dir=data_dir / "server", auth="dex", users={DEMO_USER: DEMO_PASSWORD})
    _console.out("kfp-ci demo: an embedded KFP server with Dex login, and the CI flow on the examples")
    with LocalServer(options, host="127.0.0.1", port=port) as server:
        url = server.url
        _console.out(f"server: {url}  (Dex user {DEMO_USER}; the password comes from KFP_CI_PASSWORD)")
        cfg = ["--config", str(config)]
        conn = ["--host", url, "--auth", "dex", "--username", DEMO_USER]
        with _env(KFP_CI_PASSWORD=DEMO_PASSWORD, KFP_CI_HOST=url):
            _kfp_ci(main, [*cfg, "compile", "--out-dir", str(out_dir)])
            packages = sorted(out_dir.glob("*.yaml"))
            if not packages:
                raise _StepFailed(f"compile wrote no pipeline into {out_dir}")
            names = [str(p) for p in packages]
            _kfp_ci(main, [*cfg, "login", *conn])
            _kfp_ci(main, [*cfg, "deploy", *names, *conn, "--run", "--wait", "--timeout", "900"])
            _kfp_ci(main, [*cfg, "deploy", *names, *conn])
            scheduled = packages[0].stem
            _kfp_ci(main, [*cfg, "schedule", scheduled, *conn, "--schedule", "0 3 * * *"])
            _kfp_ci(main, [*cfg, "status", *conn, "--limit", "5"])
        elapsed = time.monotonic() - started
        _console.out("")
        _console.out(f"Done in {elapsed:.0f}s. Look at the pipelines, versions, runs and the recurring run: {url}/")
        if keeps_serving(keep_serving=keep_serving, exit_at_end=exit_at_end, env=os.environ,
                         interactive=_interactive()):
            _console.out(f"The server stays up at {url}/ until you press Ctrl-C (--exit stops it at once).")
            sys.stdout.flush()
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                _console.out("")
                _console.out("Stopping the server.")
    sys.stdout.flush()
    return 0
