"""Settings: command-line flags, then environment variables, then ``[tool.kfp-ci]`` in ``pyproject.toml``.

The table is found by walking up from the current directory to the nearest ``pyproject.toml`` that has
one (or named with ``--config`` / ``KFP_CI_CONFIG``). Paths in it are relative to that file. Example::

    [tool.kfp-ci]
    host = "https://kubeflow.example.com/pipeline"
    namespace = "team-a"
    experiment = "ci"

    [[tool.kfp-ci.pipelines]]
    source = "pipelines/train.py:train_pipeline"
    name = "train"                      # default: the name in @dsl.pipeline
    output = "pipelines/train.yaml"     # default: <name>.yaml next to the source
    experiment = "training"
    parameters = { epochs = 3 }
    schedule = "0 0 3 * * *"            # or: every = "6h"
    require = ["r2>=0.8"]

    [[tool.kfp-ci.pipelines]]              # built by another tool (TFX, Elyra, a Makefile): kfp-ci runs it
    build = "python tfx_pipeline.py"       # writes the package to $KFP_CI_OUTPUT
    output = "build/pipeline.json"         # the committed package (required with build)
    inputs = ["tfx_pipeline.py", "components/**/*.py"]  # optional: cache key; default: always rebuild
    [tool.kfp-ci.environments.production]   # chosen with --env production or KFP_CI_ENV=production
    host = "https://kubeflow.prod.example.com/pipeline"
    auth = "token"
    token-env = "KFP_PROD_TOKEN"        # the token is read from this variable, never from the file
    [tool.kfp-ci.environments.production.pipelines.train]
    schedule = "0 0 2 * * *"

Secrets (password, token, cookie) are read only from environment variables or files, never from the
table or from a command-line value.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from kfp_ci._secrets import clean as clean_secret
from kfp_ci.errors import ConfigError


def _toml() -> Any:
    """tomllib (tomli on 3.10), imported only when a pyproject.toml is read: ``--help`` never pays for it."""
    if sys.version_info >= (3, 11):
        import tomllib as module
    else:  # pragma: no cover - Python 3.10 only
        import tomli as module
    return module

__all__ = [
    "AUTH_MODES",
    "ENVIRONMENT_ENV_VAR",
    "PipelineConfig",
    "Settings",
    "find_pyproject",
    "load_settings",
    "read_secret",
]

AUTH_MODES = ("auto", "none", "token", "dex", "cookie")

# Environment variable -> settings field. Earlier names win over later ones for the same field.
ENV_VARS: dict[str, tuple[str, ...]] = {
    "host": ("KFP_CI_HOST", "KF_PIPELINES_ENDPOINT"),
    "namespace": ("KFP_CI_NAMESPACE",),
    "auth": ("KFP_CI_AUTH",),
    "username": ("KFP_CI_USERNAME",),
    "password_file": ("KFP_CI_PASSWORD_FILE",),
    "token_file": ("KFP_CI_TOKEN_FILE", "KF_PIPELINES_SA_TOKEN_PATH"),
    "cookie_file": ("KFP_CI_COOKIE_FILE",),
    "dex_connector": ("KFP_CI_DEX_CONNECTOR",),
    "ca_bundle": ("KFP_CI_CA_BUNDLE", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"),
    "insecure_skip_tls_verify": ("KFP_CI_INSECURE_SKIP_TLS_VERIFY",),
    "allow_insecure_http": ("KFP_CI_ALLOW_INSECURE_HTTP",),
    "experiment": ("KFP_CI_EXPERIMENT",),
    "version_name": ("KFP_CI_VERSION_NAME",),
    "timeout": ("KFP_CI_HTTP_TIMEOUT",),
}
# Secret values: only ever from these environment variables (or the *_file settings).
SECRET_ENV_VARS = {"password": "KFP_CI_PASSWORD", "token": "KFP_CI_TOKEN", "cookie": "KFP_CI_COOKIE"}

_TOP_KEYS = {
    "host": "host",
    "namespace": "namespace",
    "auth": "auth",
    "username": "username",
    "dex-connector": "dex_connector",
    "ca-bundle": "ca_bundle",
    "experiment": "experiment",
    "version-name": "version_name",
    "out-dir": "out_dir",
    "ignore-sdk-version": "ignore_sdk_version",
    "timeout": "timeout",
    "pipelines": "pipelines",
    "environments": "environments",
}
_PIPELINE_KEYS = {
    "source": "source",
    "name": "name",
    "output": "output",
    "experiment": "experiment",
    "description": "description",
    "parameters": "parameters",
    "schedule": "schedule",
    "every": "every",
    "latest": "latest",
    "require": "require",
    "max-regression": "max_regression",
    "baseline": "baseline",
    "build": "build",
    "inputs": "inputs",
}
_TYPE_NAMES = {str: "a string", int: "a number", float: "a number", bool: "true or false", list: "a list",
               dict: "a table"}
_BOOL_TRUE = {"1", "true", "yes", "on"}
_BOOL_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """One pipeline declared in ``[[tool.kfp-ci.pipelines]]``."""

    source: str
    """``path/to/file.py:function`` (absolute after loading) or ``path/to/file.py``."""
    name: str | None = None
    output: Path | None = None
    experiment: str | None = None
    description: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    schedule: str | None = None
    every: str | None = None
    latest: bool = False
    require: tuple[str, ...] = ()
    max_regression: Mapping[str, float] = field(default_factory=dict)
    baseline: str | None = None
    build: str | None = None
    """A shell command that writes the pipeline package to ``$KFP_CI_OUTPUT`` (instead of compiling ``source``)."""
    inputs: tuple[str, ...] = ()
    """Absolute glob patterns of the files ``build`` reads (its cache key)."""
    build_dir: Path | None = None
    """Where ``build`` runs: the directory of the ``pyproject.toml`` that declares it."""

    @property
    def source_file(self) -> Path:
        return Path(self.source.rsplit(":", 1)[0] if self._has_function else self.source)

    @property
    def function(self) -> str | None:
        return self.source.rsplit(":", 1)[1] if self._has_function else None

    @property
    def _has_function(self) -> bool:
        head, sep, tail = self.source.rpartition(":")
        return bool(sep) and bool(tail) and "/" not in tail and "\\" not in tail and len(head) > 1


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a command needs to know, merged from flags, environment and project file."""

    host: str | None = None
    namespace: str | None = None
    auth: str = "auto"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    password_file: Path | None = None
    token: str | None = field(default=None, repr=False)
    token_file: Path | None = None
    cookie: str | None = field(default=None, repr=False)
    cookie_file: Path | None = None
    dex_connector: str | None = None
    ca_bundle: Path | None = None
    insecure_skip_tls_verify: bool = False
    allow_insecure_http: bool = False
    experiment: str | None = None
    version_name: str | None = None
    out_dir: Path | None = None
    ignore_sdk_version: bool = False
    """``kfp-ci compile --check``: a compiled file that differs only in its kfp version stamp is fresh."""
    timeout: float = 30.0
    pipelines: tuple[PipelineConfig, ...] = ()
    project_file: Path | None = None
    """The ``pyproject.toml`` the table came from, if any."""
    environment: str | None = None
    """The ``[tool.kfp-ci.environments.<name>]`` these settings were merged with (``--env`` / ``KFP_CI_ENV``)."""
    environments: tuple[str, ...] = ()
    """Every environment the project table declares, in file order."""
    sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    """Where each set field came from: ``flag``, ``env KFP_CI_HOST``, ``[tool.kfp-ci.environments.prod]``, ..."""

    @property
    def project_root(self) -> Path | None:
        return self.project_file.parent if self.project_file else None

    def with_overrides(self, **overrides: Any) -> Settings:
        """Return a copy with the non-``None`` overrides applied (flags win over everything)."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:  # programming error, not user input
            raise TypeError(f"unknown settings: {sorted(unknown)}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


# pyproject.toml files find_pyproject parsed, so that _read_table does not parse the chosen one again
_PARSED: dict[Path, dict[str, Any]] = {}


def find_pyproject(start: Path) -> Path | None:
    """Nearest ``pyproject.toml`` at or above ``start`` that has a ``[tool.kfp-ci]`` table."""
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            try:
                text = candidate.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read {candidate}: {exc.strerror}") from None
            except UnicodeDecodeError as exc:
                raise ConfigError(f"{candidate}: not UTF-8 text (byte {exc.start}): fix or remove the file") from None
            if "kfp-ci" not in text:  # no table of ours: skip the TOML parser (and its import)
                continue
            # A file naming kfp-ci that does not parse is an error, never skipped for a parent folder's table.
            data = _parse_toml(text, candidate)
            if isinstance(data.get("tool"), dict) and "kfp-ci" in data["tool"]:
                _PARSED[candidate] = data
                return candidate
    return None


_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def _parse_toml(text: str, path: Path) -> dict[str, Any]:
    """Parse a pyproject.toml; invalid TOML is a ConfigError naming ``file:line:column`` and the reason."""
    toml = _toml()
    try:
        data: dict[str, Any] = toml.loads(text)
    except toml.TOMLDecodeError as exc:
        message = str(exc).splitlines()[0] if str(exc) else "invalid TOML"
        line, column = getattr(exc, "lineno", None), getattr(exc, "colno", None)
        found = _TOML_AT.search(message)
        if found:
            message = message[: found.start()]
            line, column = line or int(found.group(1)), column or int(found.group(2))
        where = f"{path}:{line}:{column}" if line else str(path)
        raise ConfigError(f"{where}: invalid TOML: {message}") from None
    return data


def _read_table(path: Path) -> dict[str, Any]:
    data = _PARSED.pop(path, None)
    if data is None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
        data = _parse_toml(text, path)
    table = data.get("tool", {}).get("kfp-ci", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.kfp-ci] must be a table")
    return table


def _expect(value: Any, kind: type | tuple[type, ...], key: str, path: Path) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(dict.fromkeys(_TYPE_NAMES.get(k, k.__name__) for k in kinds))
        raise ConfigError(f"{path}: [tool.kfp-ci] key '{key}' must be {names}, got {value!r}")
    return value


def _parse_pipeline(raw: Any, index: int, path: Path) -> PipelineConfig:
    where = f"pipelines[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: [tool.kfp-ci] {where} must be a table")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _PIPELINE_KEYS:
            allowed = ", ".join(sorted(_PIPELINE_KEYS))
            raise ConfigError(f"{path}: unknown key '{key}' in [tool.kfp-ci] {where} (allowed: {allowed})")
        name = _PIPELINE_KEYS[key]
        full = f"{where}.{key}"
        if name in ("source", "name", "experiment", "description", "schedule", "every", "baseline", "build"):
            values[name] = _expect(value, str, full, path)
        elif name == "output":
            values[name] = (path.parent / _expect(value, str, full, path)).resolve()
        elif name == "parameters":
            values[name] = dict(_expect(value, dict, full, path))
        elif name == "latest":
            values[name] = _expect(value, bool, full, path)
        elif name == "inputs":
            items = _expect(value, list, full, path)
            values[name] = tuple(str(path.parent / _expect(item, str, full, path)) for item in items)
        elif name == "require":
            items = _expect(value, list, full, path)
            for item in items:
                _expect(item, str, full, path)
            values[name] = tuple(items)
        elif name == "max_regression":
            table = _expect(value, dict, full, path)
            for metric, delta in table.items():
                _expect(delta, (int, float), f"{full}.{metric}", path)
            values[name] = {k: float(v) for k, v in table.items()}
    if values.get("build") is not None:
        if not str(values["build"]).strip():
            raise ConfigError(f"{path}: [tool.kfp-ci] {where}.build is empty: give the command that builds the package")
        if "output" not in values:
            raise ConfigError(f"{path}: [tool.kfp-ci] {where} has 'build' but no 'output' (the package file it writes, "
                              "e.g. build/pipeline.json)")
        values.setdefault("source", str(values["output"]))  # deploy's git path and messages name the package
        values["build_dir"] = path.parent.resolve()
    elif values.get("inputs"):
        raise ConfigError(f"{path}: [tool.kfp-ci] {where}.inputs needs 'build' (kfp pipelines find their inputs)")
    if "source" not in values:
        raise ConfigError(f"{path}: [tool.kfp-ci] {where} needs a 'source' (path/to/file.py:function) or a 'build' "
                          "command")
    if values.get("schedule") and values.get("every"):
        raise ConfigError(f"{path}: [tool.kfp-ci] {where} sets both 'schedule' and 'every'; keep one")
    source = values["source"]
    file_part, sep, func = source.rpartition(":")
    if not sep or "/" in func or not file_part:
        file_part, func = source, ""
    values["source"] = str((path.parent / file_part).resolve()) + (f":{func}" if func else "")
    return PipelineConfig(**values)


def _settings_from_table(path: Path) -> dict[str, Any]:
    table = _read_table(path)
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _TOP_KEYS:
            allowed = ", ".join(sorted(_TOP_KEYS))
            raise ConfigError(f"{path}: unknown key '{key}' in [tool.kfp-ci] (allowed: {allowed})")
        name = _TOP_KEYS[key]
        if name == "pipelines":
            items = _expect(value, list, key, path)
            values[name] = tuple(_parse_pipeline(item, i, path) for i, item in enumerate(items))
            names = [p.name for p in values[name] if p.name]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ConfigError(f"{path}: [tool.kfp-ci] declares pipeline name(s) twice: {', '.join(duplicates)}")
        elif name == "environments":
            values[name] = _expect(value, dict, key, path)  # checked by _parse_environments
        else:
            values[name] = _setting_value(name, value, key, path)
    return values


def _setting_value(name: str, value: Any, key: str, path: Path) -> Any:
    """A connection or compile setting's value from a table of ``path`` (``[tool.kfp-ci]`` or an environment's),
    checked for its field: the same rules wherever the key is written."""
    if name == "timeout":
        seconds = float(_expect(value, (int, float), key, path))
        if not _positive_seconds(seconds):
            raise ConfigError(f"{path}: [tool.kfp-ci] key '{key}' must be a positive number of seconds, "
                              f"got {value!r}")
        return seconds
    if name in ("ignore_sdk_version", "insecure_skip_tls_verify", "allow_insecure_http"):
        return _expect(value, bool, key, path)
    if name in ("ca_bundle", "out_dir"):
        return (path.parent / _expect(value, str, key, path)).resolve()
    return _expect(value, str, key, path)


def _positive_seconds(value: float) -> bool:
    """A usable timeout: finite and above zero (``nan``, ``inf`` and negative values are refused)."""
    return math.isfinite(value) and value > 0


def _parse_bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in _BOOL_TRUE:
        return True
    if lowered in _BOOL_FALSE:
        return False
    raise ConfigError(f"environment variable {name} must be true or false, got {raw!r}")


def _settings_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, variables in ENV_VARS.items():
        for variable in variables:
            raw = env.get(variable)
            if raw is None or raw == "":
                continue
            if name in ("insecure_skip_tls_verify", "allow_insecure_http"):
                values[name] = _parse_bool(variable, raw)
            elif name in ("password_file", "token_file", "cookie_file", "ca_bundle"):
                values[name] = Path(raw).expanduser()
            elif name == "timeout":
                try:
                    values[name] = float(raw)
                except ValueError:
                    values[name] = math.nan
                if not _positive_seconds(values[name]):
                    raise ConfigError(f"environment variable {variable} must be a positive number of seconds")
            else:
                values[name] = raw
            break
    for name, variable in SECRET_ENV_VARS.items():
        raw = env.get(variable)
        if raw:
            try:
                values[name] = clean_secret(raw)
            except ValueError as exc:
                raise ConfigError(f"environment variable {variable} {exc}") from None
            if not values[name]:
                raise ConfigError(f"environment variable {variable} is blank")
    return values


def read_secret(path: Path, what: str) -> str:
    """Read a secret (password, token, cookie) from a file, register it for masking (every line of it) and
    return it without its trailing newline; a line break or control character inside it is a ConfigError."""
    try:
        value = clean_secret(path.expanduser().read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise ConfigError(f"the {what} file {path} is not UTF-8 text") from None
    except ValueError as exc:
        raise ConfigError(f"the {what} file {path} {exc}") from None
    if not value:
        raise ConfigError(f"the {what} file {path} is empty")
    return value


# --------------------------------------------------------------------------------------- environments
ENVIRONMENT_ENV_VAR = "KFP_CI_ENV"
ALL_ENVIRONMENTS = "all"
"""Reserved name: ``kfp-ci status --env all`` looks at every environment."""
# [tool.kfp-ci.environments.<name>] keys -> settings field (besides 'pipelines' and the *-env secret names)
_ENVIRONMENT_KEYS = {
    "host": "host",
    "namespace": "namespace",
    "auth": "auth",
    "username": "username",
    "dex-connector": "dex_connector",
    "ca-bundle": "ca_bundle",
    "experiment": "experiment",
    "version-name": "version_name",
    "timeout": "timeout",
    "insecure-skip-tls-verify": "insecure_skip_tls_verify",
    "allow-insecure-http": "allow_insecure_http",
}
# Names of the environment variables an environment reads its secrets from, instead of KFP_CI_PASSWORD etc.
_SECRET_NAME_KEYS = {"password-env": "password", "token-env": "token", "cookie-env": "cookie"}
# What an environment may override per pipeline: [tool.kfp-ci.environments.<name>.pipelines.<pipeline>]
_ENVIRONMENT_PIPELINE_KEYS = ("experiment", "parameters", "schedule", "every", "latest", "require",
                              "max-regression", "baseline")
_ENV_NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


@dataclass(frozen=True, slots=True)
class _Environment:
    name: str
    values: dict[str, Any]
    secret_vars: dict[str, str]
    pipelines: dict[str, dict[str, Any]]


def _parse_environments(raw: dict[str, Any], path: Path) -> dict[str, _Environment]:
    """Check every ``[tool.kfp-ci.environments.<name>]`` table (selected or not): unknown keys are errors."""
    import re

    found: dict[str, _Environment] = {}
    for name, table in raw.items():
        where = f"[tool.kfp-ci.environments.{name}]"
        if name == ALL_ENVIRONMENTS:
            raise ConfigError(f"{path}: environment name 'all' is reserved (kfp-ci status --env all); rename it")
        if not re.match(_ENV_NAME_RE, name):
            raise ConfigError(f"{path}: environment name {name!r} must be letters, digits, '.', '_' or '-'")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {where} must be a table")
        values: dict[str, Any] = {}
        secret_vars: dict[str, str] = {}
        pipelines: dict[str, dict[str, Any]] = {}
        for key, value in table.items():
            full = f"environments.{name}.{key}"
            if key in _ENVIRONMENT_KEYS:
                field_name = _ENVIRONMENT_KEYS[key]
                values[field_name] = _setting_value(field_name, value, full, path)
            elif key in _SECRET_NAME_KEYS:
                variable = _expect(value, str, full, path)
                if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", variable):
                    raise ConfigError(f"{path}: {where} {key} must name an environment variable, got {variable!r}"
                                      " (the secret itself never goes in the file)")
                secret_vars[_SECRET_NAME_KEYS[key]] = variable
            elif key == "pipelines":
                for pipeline, overrides in _expect(value, dict, full, path).items():
                    pipelines[pipeline] = _environment_pipeline(overrides, f"{full}.{pipeline}", path)
            else:
                allowed = ", ".join(sorted([*_ENVIRONMENT_KEYS, *_SECRET_NAME_KEYS, "pipelines"]))
                raise ConfigError(f"{path}: unknown key '{key}' in {where} (allowed: {allowed})")
        if values.get("auth") is not None and values["auth"] not in AUTH_MODES:
            raise ConfigError(f"{path}: {where} auth {values['auth']!r} is not one of {', '.join(AUTH_MODES)}")
        found[name] = _Environment(name, values, secret_vars, pipelines)
    return found


def _environment_pipeline(raw: Any, where: str, path: Path) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: [tool.kfp-ci] {where} must be a table")
    unknown = sorted(set(raw) - set(_ENVIRONMENT_PIPELINE_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown key '{unknown[0]}' in [tool.kfp-ci] {where} "
                          f"(allowed: {', '.join(sorted(_ENVIRONMENT_PIPELINE_KEYS))})")
    # the same checks as [[tool.kfp-ci.pipelines]], on a stand-in source
    parsed = _parse_pipeline({"source": "x.py", **raw}, 0, path)
    return {_PIPELINE_KEYS[key]: getattr(parsed, _PIPELINE_KEYS[key]) for key in raw}


def _apply_environment(pipelines: tuple[PipelineConfig, ...], environment: _Environment,
                       path: Path) -> tuple[PipelineConfig, ...]:
    names = {p.name for p in pipelines if p.name}
    for pipeline in environment.pipelines:
        if pipeline not in names:
            known = ", ".join(sorted(names)) or "none named"
            raise ConfigError(f"{path}: [tool.kfp-ci.environments.{environment.name}.pipelines] names pipeline "
                              f"'{pipeline}', which [[tool.kfp-ci.pipelines]] does not declare (pipelines: {known})")
    out = []
    for config in pipelines:
        overrides = dict(environment.pipelines.get(config.name or "", {}))
        if "parameters" in overrides:  # parameters merge key by key; everything else replaces
            overrides["parameters"] = {**config.parameters, **overrides["parameters"]}
        if "schedule" in overrides and "every" not in overrides:
            overrides["every"] = None
        if "every" in overrides and "schedule" not in overrides:
            overrides["schedule"] = None
        out.append(replace(config, **overrides) if overrides else config)
    return tuple(out)


def _env_var_sources(env: Mapping[str, str]) -> dict[str, str]:
    """Which variable each field :func:`_settings_from_env` read came from."""
    sources: dict[str, str] = {}
    for name, variables in ENV_VARS.items():
        for variable in variables:
            if env.get(variable):
                sources[name] = f"env {variable}"
                break
    for name, variable in SECRET_ENV_VARS.items():
        if env.get(variable):
            sources[name] = f"env {variable}"
    return sources


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    config_file: Path | None = None,
    environment: str | None = None,
) -> Settings:
    """Merge settings: ``flags`` (``None`` values ignored) over ``env`` over the project table.

    With an ``environment`` (or ``flags['environment']``, or ``KFP_CI_ENV``), that
    ``[tool.kfp-ci.environments.<name>]`` table sits between the flags and the environment variables: it is an
    explicit choice, so a ``KFP_CI_HOST`` left in a job's environment cannot redirect it. Its secrets come from the
    variables it names (``token-env`` ...), else from the usual ``KFP_CI_*`` ones.
    """
    env = os.environ if env is None else env
    flags = dict(flags or {})
    flag_environment = flags.pop("environment", None) or environment
    chosen = flag_environment or env.get(ENVIRONMENT_ENV_VAR) or None
    settings, raw = _load_settings(flags, env=env, cwd=cwd, config_file=config_file)
    project = settings.project_file
    parsed = _parse_environments(raw, project) if project is not None and raw else {}
    if chosen is None:
        return replace(settings, environments=tuple(parsed))
    if chosen not in parsed:
        where = f" in {project}" if project is not None else " (no [tool.kfp-ci] table found)"
        source = "" if flag_environment else f" ({ENVIRONMENT_ENV_VAR})"
        known = f"[tool.kfp-ci.environments] declares {', '.join(parsed)}" if parsed else \
            "no [tool.kfp-ci.environments.<name>] table is declared"
        raise ConfigError(f"unknown environment '{chosen}'{source}{where}: {known}")
    assert project is not None
    chosen_env = parsed[chosen]
    label = f"[tool.kfp-ci.environments.{chosen}]"
    updates: dict[str, Any] = {}
    sources = dict(settings.sources)
    for name, value in chosen_env.values.items():
        if not sources.get(name, "").startswith("flag"):
            updates[name] = value
            sources[name] = label
    for name, variable in chosen_env.secret_vars.items():
        if sources.get(name, "").startswith("flag"):
            continue
        value = env.get(variable) or None
        if value:
            try:
                value = clean_secret(value)
            except ValueError as exc:
                raise ConfigError(f"environment variable {variable} ({label} {name}-env) {exc}") from None
            sources[name] = f"env {variable} ({label} {name}-env)"
        else:
            sources.pop(name, None)
        updates[name] = value  # the named variable only: never another environment's KFP_CI_* secret
    if updates.get("auth", settings.auth) not in AUTH_MODES:  # pragma: no cover - checked when parsed
        raise ConfigError(f"unknown auth mode {updates['auth']!r}")
    pipelines = _apply_environment(settings.pipelines, chosen_env, project)
    for pipeline in chosen_env.pipelines:
        sources[f"pipelines.{pipeline}"] = label
    return replace(settings, **updates, pipelines=pipelines, environment=chosen, environments=tuple(parsed),
                   sources=sources)


def _load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    config_file: Path | None = None,
) -> tuple[Settings, dict[str, Any]]:
    """Merge settings: ``flags`` (``None`` values ignored) over ``env`` over the project table; also the raw
    ``[tool.kfp-ci.environments]`` table."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    explicit = config_file or (Path(env["KFP_CI_CONFIG"]) if env.get("KFP_CI_CONFIG") else None)
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"config file {explicit} does not exist")
        project: Path | None = explicit.resolve()
    else:
        project = find_pyproject(cwd.resolve())
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    environments: dict[str, Any] = {}
    if project is not None:
        merged.update(_settings_from_table(project))
        environments = merged.pop("environments", {})
        sources.update({k: "[tool.kfp-ci]" for k in merged})
        merged["project_file"] = project
    merged.update(_settings_from_env(env))
    sources.update(_env_var_sources(env))
    merged.update({k: v for k, v in (flags or {}).items() if v is not None})
    sources.update({k: "flag" for k, v in (flags or {}).items() if v is not None})
    merged["sources"] = sources
    auth = merged.get("auth", "auto")
    if auth not in AUTH_MODES:
        raise ConfigError(f"unknown auth mode {auth!r}: use one of {', '.join(AUTH_MODES)}")
    # Only a --ca-bundle given next to the flag contradicts it; a CA bundle from the environment (SSL_CERT_FILE,
    # REQUESTS_CA_BUNDLE, KFP_CI_CA_BUNDLE) or the table is simply not used when verification is off.
    if merged.get("insecure_skip_tls_verify") and (flags or {}).get("ca_bundle") is not None:
        raise ConfigError("--ca-bundle and --insecure-skip-tls-verify contradict each other; keep one")
    timeout = merged.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not _positive_seconds(float(timeout))):
        raise ConfigError(f"--http-timeout must be a positive number of seconds, got {timeout!r}")
    return Settings(**merged), environments


_SECRET_FIELDS = ("password", "token", "cookie")


def settings_rows(settings: Settings) -> list[tuple[str, Any, str]]:
    """``(key, value, source)`` for ``kfp-ci config``: every connection setting and pipeline, secrets masked."""
    rows: list[tuple[str, Any, str]] = [
        ("environment", settings.environment,
         "--env/KFP_CI_ENV" if settings.environment else
         ("none chosen (declared: " + ", ".join(settings.environments) + ")" if settings.environments else "none")),
        ("project-file", str(settings.project_file) if settings.project_file else None,
         "--config, KFP_CI_CONFIG or the nearest pyproject.toml"),
    ]
    defaults = Settings()
    for f in fields(Settings):
        if f.name in ("pipelines", "project_file", "environment", "environments", "sources"):
            continue
        value = getattr(settings, f.name)
        source = settings.sources.get(f.name) or ("default" if value == getattr(defaults, f.name) else "")
        if f.name in _SECRET_FIELDS:
            value = "***" if value else None
        elif isinstance(value, Path):
            value = str(value)
        rows.append((f.name.replace("_", "-"), value, source or "default"))
    for config in settings.pipelines:
        key = f"pipelines.{config.name or config.source}"
        shown = {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else
                     dict(v) if isinstance(v, Mapping) else v)
                 for k in ("source", "output", "experiment", "parameters", "schedule", "every", "latest", "require")
                 if (v := getattr(config, k)) not in (None, (), {}, False)}
        rows.append((key, shown, settings.sources.get(f"pipelines.{config.name}", "[tool.kfp-ci]")))
    return rows


def show_settings(settings: Settings, output: str = "text") -> int:
    """``kfp-ci config``: print the merged settings with where each came from (secrets masked)."""
    import json

    from kfp_ci import _console

    rows = settings_rows(settings)
    if output == "json":
        _console.out(json.dumps({key: {"value": value, "source": source} for key, value, source in rows},
                                indent=2, default=str))
        return 0
    width = max(len(key) for key, _, _ in rows)
    for key, value, source in rows:
        text = "-" if value is None else value if isinstance(value, str) else json.dumps(value, default=str)
        _console.out(f"{key.ljust(width)}  {text}  ({source})")
    return 0
