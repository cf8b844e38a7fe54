"""The ``kfp-ci`` command line: a thin click layer.

Each command parses its options and hands them to the module that does the work, imported only when the
command runs, so ``--help`` and ``--version`` never import kfp, starlette or uvicorn and never touch the
network. Every :class:`kfp_ci.errors.KfpCiError` becomes one line on stderr and its exit code; a traceback
is shown only with ``--verbose``.
"""

from __future__ import annotations

import atexit
import functools
import math
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TextIO, TypeVar

import click

from kfp_ci import _console
from kfp_ci._secrets import clean as clean_secret
from kfp_ci._secrets import redact
from kfp_ci._version import __version__
from kfp_ci.config import AUTH_MODES, Settings, load_settings
from kfp_ci.errors import KfpCiError, UsageError

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@dataclass(slots=True)
class App:
    """What every command receives: global flags and the settings loader."""

    verbose: bool = False
    config_file: Path | None = None

    def settings(self, **flags: Any) -> Settings:
        """Settings from flags (``None`` = not given), environment and ``[tool.kfp-ci]``."""
        return load_settings(flags, config_file=self.config_file)


def _usage_error(exc: click.UsageError) -> NoReturn:
    where = f"kfp-ci {exc.ctx.info_name}" if exc.ctx is not None and exc.ctx.parent is not None else "kfp-ci"
    _console.error(f"{exc.format_message()} (see {where} --help)")
    if _console.in_github_actions():
        sys.stdout.write(redact(f"::error title=kfp-ci::{exc.format_message()}") + "\n")
    sys.exit(exc.exit_code)


class _Group(click.Group):
    """Builds each command on first use (``_COMMANDS``); turns kfp-ci errors into one clean line and an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMANDS:
            command = _COMMANDS[cmd_name]()
            command.params.append(_verbose_option())  # `kfp-ci deploy -v` works like `kfp-ci -v deploy`
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:  # a bad option before the command (kfp-ci --bogus): one line too
            if type(exc).__name__ == "NoArgsIsHelpError":  # plain `kfp-ci`: click prints the help
                raise
            _usage_error(exc)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # a bad option or argument: one line, exit 2
            _usage_error(exc)
        except KfpCiError as exc:
            _report(ctx, exc, str(exc))
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            _console.error("interrupted")
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort, SystemExit):
            raise
        except Exception as exc:  # a bug: still one line unless --verbose
            _report(ctx, exc, f"internal error: {type(exc).__name__}: {exc} (run with --verbose for details)")
            sys.exit(1)


def _set_verbose(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        app = ctx.find_object(App)
        if app is not None:
            app.verbose = True


def _verbose_option() -> click.Option:
    return click.Option(["-v", "--verbose"], is_flag=True, expose_value=False, is_eager=True, callback=_set_verbose,
                        help="Show tracebacks and debug output (same as kfp-ci -v).")


def _report(ctx: click.Context, exc: BaseException, line: str) -> None:
    app = ctx.find_object(App)
    if app is not None and app.verbose:
        import traceback

        sys.stderr.write(redact("".join(traceback.format_exception(exc))))
    _console.error(line)
    if _console.in_github_actions():
        sys.stdout.write(redact(f"::error title=kfp-ci::{line}") + "\n")


def _exit_with(code: int | None) -> None:
    """End the command with ``code`` when a command body returns a non-zero exit code."""
    if code:
        sys.exit(int(code))


class _Seconds(click.ParamType):  # type: ignore[type-arg,unused-ignore]  # generic from click 8.2
    """A positive, finite number of seconds (``nan``, ``inf``, zero and negative values are refused)."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(seconds) or seconds <= 0:
            self.fail(f"{value!r} must be a positive, finite number of seconds", param, ctx)
        return seconds


SECONDS = _Seconds()


def connection_options(func: F) -> F:
    """Options every command that talks to KFP takes. Secrets never come as option values."""
    options = [
        click.option("--host", metavar="URL", help="KFP host: https://kubeflow.example.com[/pipeline] or an "
                     "API URL. Env: KFP_CI_HOST, KF_PIPELINES_ENDPOINT."),
        click.option("-n", "--namespace", metavar="NS", help="Profile namespace (multi-user). Env: KFP_CI_NAMESPACE."),
        click.option("--auth", type=click.Choice(AUTH_MODES), default=None,
                     help="How to authenticate (default auto). Env: KFP_CI_AUTH."),
        click.option("--username", metavar="USER", help="Dex username. Env: KFP_CI_USERNAME."),
        click.option("--password-stdin", is_flag=True, default=False,
                     help="Read the Dex password from standard input. Else env KFP_CI_PASSWORD or --password-file."),
        click.option("--password-file", type=click.Path(dir_okay=False, path_type=Path),
                     help="File holding the Dex password. Env: KFP_CI_PASSWORD_FILE."),
        click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path),
                     help="Bearer token file, re-read on every request. Env: KFP_CI_TOKEN_FILE, "
                     "KF_PIPELINES_SA_TOKEN_PATH (token itself: KFP_CI_TOKEN)."),
        click.option("--cookie-file", type=click.Path(dir_okay=False, path_type=Path),
                     help="File holding a session cookie. Env: KFP_CI_COOKIE_FILE (cookie itself: KFP_CI_COOKIE)."),
        click.option("--dex-connector", metavar="ID", help="Dex connector to log in with (local, ldap, ...)."),
        click.option("--ca-bundle", type=click.Path(dir_okay=False, path_type=Path),
                     help="CA bundle to verify TLS with. Env: KFP_CI_CA_BUNDLE, SSL_CERT_FILE, REQUESTS_CA_BUNDLE."),
        click.option("--insecure-skip-tls-verify", is_flag=True, default=None,
                     help="Do not verify TLS certificates (warns)."),
        click.option("--allow-insecure-http", is_flag=True, default=None,
                     help="Allow sending credentials over plain http to a non-loopback host (warns)."),
        click.option("--http-timeout", "timeout", type=SECONDS, metavar="SECONDS",
                     help="Connect/read timeout of each HTTP request (default 30)."),
        click.option("--env", "environment", metavar="NAME", help="Use [tool.kfp-ci.environments.NAME] "
                     "(host, auth, secrets' variable names, per-pipeline overrides). Env: KFP_CI_ENV."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


CONNECTION_FLAGS = (
    "host", "namespace", "auth", "username", "password_stdin", "password_file", "token_file", "cookie_file",
    "dex_connector", "ca_bundle", "insecure_skip_tls_verify", "allow_insecure_http", "timeout", "environment",
)


def settings_from(app: App, kwargs: dict[str, Any]) -> Settings:
    """Pop the connection flags out of ``kwargs`` and build :class:`Settings` from them."""
    flags = {name: kwargs.pop(name) for name in CONNECTION_FLAGS if name in kwargs}
    if flags.pop("password_stdin", False):
        if sys.stdin is None or sys.stdin.isatty():
            raise UsageError("--password-stdin: pipe the password in (e.g. printenv KFP_PASSWORD | kfp-ci ...)")
        try:
            password = clean_secret(sys.stdin.readline())
        except ValueError as exc:
            raise UsageError(f"--password-stdin: the password {exc}") from None
        if not password:
            raise UsageError("--password-stdin: standard input was empty")
        flags["password"] = password
    return app.settings(**flags)


def pass_app(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(click.get_current_context().ensure_object(App), *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _param_pairs(_ctx: click.Context, _param: click.Parameter, values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE")
        pairs.append((key.strip(), val))
    return tuple(pairs)


@click.group(cls=_Group, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="kfp-ci", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and debug output.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="pyproject.toml to read [tool.kfp-ci] from (default: nearest one above the current directory).")
@click.pass_context
def main(ctx: click.Context, verbose: bool, config_file: Path | None) -> None:
    """CI/CD/CT for Kubeflow Pipelines: compile, log in, deploy versions, run, schedule and gate.

    Settings come from flags, then environment variables (KFP_CI_*), then [tool.kfp-ci] in pyproject.toml.
    Exit codes: 0 ok, 1 failed (compile, run, gate), 2 usage or config error, 3 auth, 4 server or network,
    5 timeout.
    """
    ctx.obj = App(verbose=verbose, config_file=config_file)
    warnings.showwarning = _warning_line


def _warning_line(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    """A Python warning (e.g. the client's TLS one) as one ``kfp-ci: warning:`` line, without a source location."""
    _console.warn(str(message))


# --------------------------------------------------------------------------------------------- compile
def _compile_command() -> click.Command:
    @click.command("compile", context_settings=CONTEXT_SETTINGS)
    @click.argument("paths", nargs=-1, metavar="[PATHS|FILE.py:FUNCTION]...")
    @click.option("--function", "function", metavar="NAME", help="Compile only the pipeline function NAME.")
    @click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
                  help="Write <pipeline-name>.yaml here (default: config output, else next to the source).")
    @click.option("--layout", type=click.Choice(["flat", "mirror"]), default=None,
                  help="Output directory layout: flat <name>.yaml (default), or mirror: <source path without "
                  ".py>/<name>.yaml under it, relative to the repository root (never collides).")
    @click.option("--ignore-sdk-version", is_flag=True, default=None,
                  help="With --check: a file that differs only in its kfp SDK version stamp is fresh "
                  "([tool.kfp-ci] ignore-sdk-version).")
    @click.option("--check", is_flag=True, help="Compile without writing; exit 1 if a pipeline fails or a committed "
                  "compiled file is missing, stale or from another kfp version (compared on content: kfp's "
                  "clock stamps and dict-default key order are ignored). Touches nothing.")
    @click.option("--pipeline-parameters", metavar="JSON", help="JSON object overriding pipeline parameter defaults.")
    @click.option("--disable-execution-caching-by-default", is_flag=True, default=None,
                  help="Compile with caching off by default (env KFP_DISABLE_EXECUTION_CACHING_BY_DEFAULT).")
    @click.option("-j", "--jobs", type=click.IntRange(min=1), help="Source modules compiled in parallel "
                  "(default: CPU count).")
    @click.option("--timeout", type=SECONDS, default=120.0, show_default=True,
                  help="Seconds one source module may take.")
    @click.option("--no-cache", is_flag=True, help="Recompile even when nothing changed (.kfp-ci/cache/).")
    @click.option("--format", "fmt", type=click.Choice(["text", "github", "json"]), default=None,
                  help="Report format (default: github under GitHub Actions, else text).")
    @pass_app
    def compile_cmd(app: App, **kwargs: Any) -> None:
        """Compile pipelines to YAML with the installed kfp SDK (2.x IR, or 1.8 Argo).

        With no PATHS, compiles the pipelines declared in [tool.kfp-ci]; with PATHS (files or directories),
        every pipeline kfp finds in them; FILE.py:FUNCTION compiles that one function. Exit 0 ok, 1 a pipeline
        failed or output is stale, 2 usage.
        """
        from kfp_ci.compile import compile_command

        _exit_with(compile_command(app.settings(), **kwargs))
    return compile_cmd


# ----------------------------------------------------------------------------------------------- login
def _login_command() -> click.Command:
    @click.command("login", context_settings=CONTEXT_SETTINGS)
    @connection_options
    @click.option("--save", is_flag=True, help="Cache the session (0600, user cache dir, keyed by host) for later "
                  "commands.")
    @click.option("--print-cookie", is_flag=True, help="Print the session cookie header for other tools "
                  "(masked first under GitHub Actions).")
    @click.option("--debug-dir", type=click.Path(file_okay=False, path_type=Path),
                  help="Save pages the login flow did not understand here (secrets removed).")
    @pass_app
    def login_cmd(app: App, **kwargs: Any) -> None:
        """Log in to KFP (Dex, token, cookie) and prove it with an authenticated call.

        Prints who is logged in and, when multi-user, the namespaces.
        """
        settings = settings_from(app, kwargs)
        from kfp_ci.auth import login_command

        _exit_with(login_command(settings, **kwargs))
    return login_cmd


# Options several commands share (each use builds its own click.Option)
output_option = click.option("-o", "--output", "output", type=click.Choice(["text", "json"]), default="text",
                             show_default=True)
terminate_option = click.option("--terminate-on-timeout", is_flag=True,
                                help="Terminate the run when --timeout expires.")
outage_option = click.option("--outage-window", "outage_window", type=SECONDS, metavar="SECONDS",
                             help="While waiting, ride out a server or network outage (5xx, resets, timeouts) "
                             "this long before giving up with exit 4 (default 300).")


# ---------------------------------------------------------------------------------------------- deploy
def deploy_options(func: F) -> F:
    options = [
        click.option("--experiment", "-e", metavar="NAME", help="Experiment for runs and recurring runs "
                     "(get-or-create; default from config, else 'Default')."),
        click.option("--version-name", metavar="TEMPLATE", help="Version name template: {sha}, {short_sha}, "
                     "{ref}, {date}, {n}. Default {short_sha} (with -dirty on a dirty tree)."),
        click.option("--param", "params", multiple=True, metavar="KEY=VALUE", callback=_param_pairs,
                     help="Run parameter, typed by the pipeline's inputs (repeatable)."),
        click.option("--run", "run_once", is_flag=True, help="Start a run of the deployed version (only when a "
                     "version was uploaded: an unchanged pipeline starts no run)."),
        click.option("--run-always", is_flag=True, help="With --run: start the run even when the pipeline is "
                     "unchanged (its latest version holds the same package) and nothing was uploaded."),
        click.option("--compile", "compile_mode", type=click.Choice(["auto", "always", "never"]), default="auto",
                     show_default=True, help="auto: upload a configured pipeline's committed compiled file (its "
                     "output) when it exists, without kfp, else compile; always: recompile; never: only "
                     "committed or given files."),
        click.option("--wait", is_flag=True, help="Wait for the run to finish; exit 0 only if it SUCCEEDED."),
        click.option("--timeout", "wait_timeout", type=SECONDS, metavar="SECONDS",
                     help="Give up waiting after SECONDS (exit 5)."),
        terminate_option,
        outage_option,
        click.option("--schedule", metavar="CRON", help="Keep one recurring run on this cron (5 or 6 fields, UTC)."),
        click.option("--every", metavar="DURATION", help="Keep one recurring run every DURATION (30m, 6h, 1d)."),
        click.option("--latest", is_flag=True, help="Recurring run always uses the newest version (KFP >= 2.5)."),
        click.option("--keep-old", is_flag=True, help="Keep the replaced recurring run, disabled."),
        click.option("--require", multiple=True, metavar="EXPR", help="Gate: metric requirement, e.g. 'r2>=0.8' "
                     "(needs --run --wait; repeatable)."),
        click.option("--baseline", metavar="last-success|RUN_ID", help="Gate: compare metrics with this run."),
        click.option("--max-regression", multiple=True, metavar="METRIC=DELTA",
                     help="Gate: allowed drop against the baseline (repeatable)."),
        click.option("--dry-run", is_flag=True, help="Print the plan and change nothing."),
        click.option("-o", "--output", "output", type=click.Choice(["text", "json"]), default="text",
                     show_default=True, help="Summary format."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


name_option = click.option("--name", metavar="NAME", help="Pipeline name (default: the name in [tool.kfp-ci], "
                           "else the package's pipelineInfo.name).")


def _deploy_command() -> click.Command:
    @click.command("deploy", context_settings=CONTEXT_SETTINGS)
    @click.argument("pipelines", nargs=-1)
    @connection_options
    @name_option
    @click.option("--description", metavar="TEXT", help="Pipeline description, given when the pipeline is created "
                  "(default: [tool.kfp-ci] description, else the package's).")
    @deploy_options
    @pass_app
    def deploy_cmd(app: App, **kwargs: Any) -> None:
        """Upload a new pipeline version; optionally run it once or keep one recurring run on it.

        PIPELINES: names from [tool.kfp-ci], pipeline packages (.yaml, .json, .zip, .tar.gz: KFP v2, Argo, or a
        TFX/Vertex PipelineJob), or sources file.py[:function] (compiled first). Default: every pipeline in
        [tool.kfp-ci].
        """
        settings = settings_from(app, kwargs)
        from kfp_ci.deploy import deploy_command

        _exit_with(deploy_command(settings, **kwargs))
    return deploy_cmd


def _plan_command() -> click.Command:
    @click.command("plan", context_settings=CONTEXT_SETTINGS)
    @click.argument("pipelines", nargs=-1)
    @click.option("--base", metavar="REF", required=True, help="Branch the pull request merges into (compared "
                  "with its committed compiled files and [tool.kfp-ci]).")
    @click.option("--against-host", is_flag=True, help="Also compare with each pipeline's latest version on the "
                  "KFP host (read-only GET requests; needs credentials).")
    @click.option("--comment", is_flag=True, help="Post the plan as one pull-request comment, edited on every "
                  "push (GitHub REST API, token from env GITHUB_TOKEN; without one: job summary only).")
    @connection_options
    @pass_app
    def plan_cmd(app: App, **kwargs: Any) -> None:
        """What merging this pull request would deploy: per pipeline, new version or unchanged, steps and
        parameters changed, schedule changes, and the DAG with changed steps marked (Markdown).

        PIPELINES: names from [tool.kfp-ci] or compiled YAML files. Default: every pipeline in [tool.kfp-ci].
        """
        settings = settings_from(app, kwargs)
        from kfp_ci.deploy import plan_command

        _exit_with(plan_command(settings, **kwargs))
    return plan_cmd


def _run_command() -> click.Command:
    @click.command("run", context_settings=CONTEXT_SETTINGS)
    @click.argument("pipeline")
    @connection_options
    @click.option("--version", "version", default="latest", show_default=True, metavar="latest|NAME",
                  help="Version to run.")
    @click.option("--experiment", "-e", metavar="NAME", help="Experiment (get-or-create).")
    @name_option
    @click.option("--run-name", metavar="NAME", help="Display name of the run.")
    @click.option("--description", metavar="TEXT", help="Description of the run.")
    @click.option("--param", "params", multiple=True, metavar="KEY=VALUE", callback=_param_pairs,
                  help="Run parameter (repeatable).")
    @click.option("--wait", is_flag=True, help="Wait for the run; exit 0 only if it SUCCEEDED.")
    @click.option("--timeout", "wait_timeout", type=SECONDS, metavar="SECONDS",
                  help="Give up waiting after SECONDS (exit 5).")
    @terminate_option
    @outage_option
    @output_option
    @pass_app
    def run_cmd(app: App, **kwargs: Any) -> None:
        """Run a deployed version of PIPELINE (a name from the server or [tool.kfp-ci], or the package file it was
        deployed from: then a PipelineJob's parameter values are the defaults)."""
        settings = settings_from(app, kwargs)
        from kfp_ci.deploy import run_command

        _exit_with(run_command(settings, **kwargs))
    return run_cmd


def _schedule_command() -> click.Command:
    @click.command("schedule", context_settings=CONTEXT_SETTINGS)
    @click.argument("pipeline")
    @connection_options
    @click.option("--schedule", "cron", metavar="CRON", help="Cron (5 or 6 fields, UTC).")
    @click.option("--every", metavar="DURATION", help="Interval (30m, 6h, 1d).")
    @click.option("--latest", is_flag=True, help="Always run the newest version (KFP >= 2.5).")
    @click.option("--version", "version", default="latest", show_default=True, metavar="latest|NAME",
                  help="Version to pin (ignored with --latest).")
    @click.option("--experiment", "-e", metavar="NAME", help="Experiment (get-or-create).")
    @click.option("--param", "params", multiple=True, metavar="KEY=VALUE", callback=_param_pairs,
                  help="Run parameter (repeatable).")
    @click.option("--keep-old", is_flag=True, help="Keep the replaced recurring run, disabled.")
    @click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
    @name_option
    @click.option("--description", metavar="TEXT", help="Description of the recurring run (kfp-ci adds its own "
                  "line).")
    @output_option
    @pass_app
    def schedule_cmd(app: App, **kwargs: Any) -> None:
        """Keep exactly one enabled recurring run of PIPELINE (swap never without one; a brief overlap of two).

        PIPELINE: a name from the server or [tool.kfp-ci], or the package file it was deployed from.
        """
        settings = settings_from(app, kwargs)
        from kfp_ci.deploy import schedule_command

        _exit_with(schedule_command(settings, **kwargs))
    return schedule_cmd


def _wait_command() -> click.Command:
    @click.command("wait", context_settings=CONTEXT_SETTINGS)
    @click.argument("run_id")
    @connection_options
    @click.option("--timeout", "wait_timeout", type=SECONDS, metavar="SECONDS",
                  help="Give up after SECONDS (exit 5).")
    @terminate_option
    @outage_option
    @output_option
    @pass_app
    def wait_cmd(app: App, **kwargs: Any) -> None:
        """Wait for RUN_ID to finish; exit 0 only if it SUCCEEDED."""
        settings = settings_from(app, kwargs)
        from kfp_ci.deploy import wait_command

        _exit_with(wait_command(settings, **kwargs))
    return wait_cmd


def _status_command() -> click.Command:
    @click.command("status", context_settings=CONTEXT_SETTINGS)
    @click.argument("run_id", required=False)
    @connection_options
    @click.option("--pipeline", metavar="NAME", help="Only runs of this pipeline.")
    @click.option("--experiment", "-e", metavar="NAME", help="Only runs in this experiment.")
    @click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True, help="How many runs.")
    @click.option("--check", is_flag=True, help="With --env all: exit 1 when a server holds content no commit made.")
    @output_option
    @pass_app
    def status_cmd(app: App, **kwargs: Any) -> None:
        """Show one run, or a table of recent runs.

        With --env all: for every environment and pipeline, the latest version and the one the recurring run
        uses against the repository's compiled file: in sync, behind (the repo is newer) or drifted.
        """
        if kwargs.get("environment") == "all":
            from kfp_ci.deploy import drift_command

            _exit_with(drift_command(app.settings(), check=bool(kwargs.get("check")),
                                     output=kwargs.get("output") or "text", load=app.settings))
            return
        if kwargs.pop("check", False):
            raise UsageError("--check needs --env all")
        settings = settings_from(app, kwargs)
        from kfp_ci.deploy import status_command

        _exit_with(status_command(settings, **kwargs))
    return status_cmd


def _gate_command() -> click.Command:
    @click.command("gate", context_settings=CONTEXT_SETTINGS)
    @click.argument("run_id")
    @connection_options
    @click.option("--pipeline", metavar="NAME", help="Use this pipeline's requirements from [tool.kfp-ci].")
    @click.option("--require", multiple=True, metavar="EXPR", help="Metric requirement, e.g. 'r2>=0.8' (repeatable).")
    @click.option("--baseline", metavar="last-success|RUN_ID", help="Compare with this run.")
    @click.option("--max-regression", multiple=True, metavar="METRIC=DELTA",
                  help="Allowed drop against the baseline (repeatable).")
    @output_option
    @pass_app
    def gate_cmd(app: App, **kwargs: Any) -> None:
        """Check a finished run's metrics against requirements and a baseline; exit 1 if the model got worse."""
        settings = settings_from(app, kwargs)
        from kfp_ci.gate import gate_command

        _exit_with(gate_command(settings, **kwargs))
    return gate_cmd


# ----------------------------------------------------------------------------------- config, promote
def _config_command() -> click.Command:
    @click.command("config", context_settings=CONTEXT_SETTINGS)
    @connection_options
    @output_option
    @pass_app
    def config_cmd(app: App, **kwargs: Any) -> None:
        """Print the merged settings (flags, KFP_CI_* variables, --env environment, [tool.kfp-ci]) and where
        each came from. Secrets are shown as ***."""
        output = kwargs.pop("output")
        settings = settings_from(app, kwargs)
        from kfp_ci.client import normalize_host
        from kfp_ci.config import show_settings

        if settings.host:
            normalize_host(settings.host)  # a host that is not a URL is an error here too, not a line to read

        _exit_with(show_settings(settings, output))
    return config_cmd


def _promote_command() -> click.Command:
    @click.command("promote", context_settings=CONTEXT_SETTINGS)
    @click.argument("pipeline")
    @click.option("--from", "source", metavar="ENV", required=True, help="Environment the version passed in.")
    @click.option("--to", "target", metavar="ENV", required=True, help="Environment to promote it to.")
    @click.option("--version", "version", metavar="NAME", help="Version to promote (default: the latest).")
    @click.option("--run-id", metavar="ID", help="Promote the version this run ran (it must have passed).")
    @click.option("--force", is_flag=True, help="Promote without a SUCCEEDED run that passed the gate (recorded).")
    @click.option("--param", "params", multiple=True, metavar="KEY=VALUE", callback=_param_pairs,
                  help="Run parameter in the target (repeatable).")
    @click.option("--run", "run_once", is_flag=True, help="Start a run of the promoted version in the target.")
    @click.option("--wait", is_flag=True, help="Wait for that run; exit 0 only if it SUCCEEDED.")
    @click.option("--timeout", "wait_timeout", type=SECONDS, metavar="SECONDS",
                  help="Give up waiting after SECONDS (exit 5).")
    @click.option("--no-schedule", is_flag=True, help="Leave the target's recurring run alone.")
    @click.option("--keep-old", is_flag=True, help="Keep the replaced recurring run, disabled.")
    @click.option("--dry-run", is_flag=True, help="Check and print the plan; change nothing.")
    @output_option
    @pass_app
    def promote_cmd(app: App, **kwargs: Any) -> None:
        """Promote the version of PIPELINE that passed in --from to --to: the same spec, the same name.

        The spec is fetched from the --from server (not recompiled) and uploaded unchanged; a version of that
        name with the same content is reused, one with other content refused. Then, like deploy, the target's
        schedule from [tool.kfp-ci] (and --run) applies. Each environment reads its own secrets.
        """
        if kwargs["source"] == kwargs["target"]:
            raise UsageError("--from and --to name the same environment; promote between two")
        source = app.settings(environment=kwargs.pop("source"))
        target = app.settings(environment=kwargs.pop("target"))
        from kfp_ci.deploy import promote_command

        _exit_with(promote_command(source, target, **kwargs))
    return promote_cmd


# ---------------------------------------------------------------------------------------- serve, demo
def _serve_command() -> click.Command:
    @click.command("serve", context_settings=CONTEXT_SETTINGS)
    @click.option("--host", "bind_host", default="127.0.0.1", show_default=True, help="Address to bind.")
    @click.option("--port", type=click.IntRange(0, 65535), default=8888, show_default=True, help="Port (0: any free).")
    @click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=Path(".kfp-ci/local"),
                  show_default=True, help="SQLite database, packages, run logs and outputs.")
    @click.option("--compat", type=click.Choice(["2.17", "2.5", "1.8"]), default="2.17", show_default=True,
                  help="KFP backend generation to behave like.")
    @click.option("--multi-user", is_flag=True, help="Require namespaces; users only touch their profiles.")
    @click.option("--auth", "auth_mode", type=click.Choice(["none", "token", "dex"]), default="none",
                  show_default=True, help="Login emulation.")
    @click.option("--dex-shape", type=click.Choice(["oauth2-proxy", "authservice"]), default="oauth2-proxy",
                  show_default=True, help="With --auth dex: Kubeflow >= 1.9 (oauth2-proxy) or 1.0-1.8 (authservice).")
    @click.option("--kubeflow", "kubeflow_version", metavar="VERSION", default="1.9.1", show_default=True,
                  help="Kubeflow release to imitate (1.9.0 adds Dex's Grant Access page).")
    @click.option("--dex-url-shape", type=click.Choice(["new", "old"]), default="new", show_default=True,
                  help="authservice only: /dex/auth/local/login?back=&state= (new) or /dex/auth/local?req= (old).")
    @click.option("--connectors", default="local", show_default=True, metavar="LIST",
                  help="Dex connectors offered, comma-separated (local, ldap).")
    @click.option("--users-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                  help="Users (email:password per line). Default user@example.com / 12341234.")
    @click.option("--tokens-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                  help="With --auth token: accepted bearer tokens, one per line (optionally token:user).")
    @click.option("--session-ttl", type=SECONDS, default=86400.0, show_default=True,
                  help="Seconds a login session lasts.")
    @click.option("--dex-wrong-password-status", type=click.Choice(["200", "401"]), default=None,
                  callback=lambda _c, _p, v: int(v) if v else None,
                  help="Status of Dex's form after a wrong password (default by --kubeflow: 401 from 1.8, 200 before).")
    @click.option("--no-execute", is_flag=True, help="Do not execute runs: mark them SUCCEEDED after --run-delay.")
    @click.option("--run-delay", type=click.FloatRange(min=0), default=0.5, show_default=True,
                  help="With --no-execute: seconds before a run succeeds.")
    @click.option("--faults", is_flag=True, help="Enable the fault-injection control endpoint (tests).")
    @pass_app
    def serve_cmd(app: App, **kwargs: Any) -> None:
        """Run the embedded KFP-compatible server (API under / and /pipeline, a page at /)."""
        from kfp_ci.local import serve_command

        _exit_with(serve_command(**kwargs))
    return serve_cmd


def _demo_command() -> click.Command:
    @click.command("demo", context_settings=CONTEXT_SETTINGS)
    @click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=Path(".kfp-ci/demo"),
                  show_default=True, help="Where the demo server keeps its data.")
    @click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port (0: any free).")
    @click.option("--keep-serving", is_flag=True,
                  help="Keep the server up at the end, until Ctrl-C, even when not in a terminal.")
    @click.option("--exit", "exit_at_end", is_flag=True,
                  help="Stop the server at the end (the default under CI, or when not in a terminal).")
    @pass_app
    def demo_cmd(app: App, **kwargs: Any) -> None:
        """Run the whole CI flow on the examples against an embedded server with Dex login."""
        from kfp_ci.local import demo_command

        _exit_with(demo_command(main, **kwargs))
    return demo_cmd


# Each command is built on first use: building all ~170 click options costs ~5 ms that a command never needs.
_COMMANDS: dict[str, Callable[[], click.Command]] = {
    "compile": _compile_command,
    "login": _login_command,
    "deploy": _deploy_command,
    "plan": _plan_command,
    "run": _run_command,
    "schedule": _schedule_command,
    "wait": _wait_command,
    "status": _status_command,
    "gate": _gate_command,
    "config": _config_command,
    "promote": _promote_command,
    "serve": _serve_command,
    "demo": _demo_command,
}


_EXIT_STATUS = [1]  # what the process exits with if a command ends without SystemExit (an escaped exception)


def _quick_exit() -> None:
    """The last atexit handler: flush the output and end the process without tearing the interpreter down."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more to say
            pass
    os._exit(_EXIT_STATUS[0])


def run() -> None:
    """The ``kfp-ci`` console script (and ``python -m kfp_ci``): :func:`main`, then a quick exit.

    After a deploy the interpreter's teardown (a final garbage collection, then clearing ~330 modules) takes
    ~20 ms, some 8% of the command. Python joins non-daemon threads and runs the other atexit handlers first;
    this handler, registered first so it runs last, then flushes stdout/stderr and calls ``os._exit`` with the
    command's status (the technique Instagram described for skipping the final collection). Library calls of
    :func:`main` (tests, ``CliRunner``) never register it.
    """
    atexit.register(_quick_exit)
    try:
        main(prog_name="kfp-ci")
    except SystemExit as exc:
        code = exc.code
        _EXIT_STATUS[0] = code if isinstance(code, int) else 0 if code is None else 1
        raise
    _EXIT_STATUS[0] = 0


if __name__ == "__main__":  # pragma: no cover
    run()
