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

Secrets (password, token, cookie) are read only from environment variables or files, never from the
table or from a command-line value.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from kfp_ci._secrets import register
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
                if "kfp-ci" not in text:  # no table of ours: skip the TOML parser (and its import)
                    continue
                data = _toml().loads(text)
            except (OSError, _toml().TOMLDecodeError, UnicodeDecodeError):
                continue
            if isinstance(data.get("tool"), dict) and "kfp-ci" in data["tool"]:
                _PARSED[candidate] = data
                return candidate
    return None


def _read_table(path: Path) -> dict[str, Any]:
    data = _PARSED.pop(path, None)
    if data is None:
        toml = _toml()
        try:
            data = toml.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
        except toml.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
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
        if name in ("source", "name", "experiment", "description", "schedule", "every", "baseline"):
            values[name] = _expect(value, str, full, path)
        elif name == "output":
            values[name] = (path.parent / _expect(value, str, full, path)).resolve()
        elif name == "parameters":
            values[name] = dict(_expect(value, dict, full, path))
        elif name == "latest":
            values[name] = _expect(value, bool, full, path)
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
    if "source" not in values:
        raise ConfigError(f"{path}: [tool.kfp-ci] {where} needs a 'source' (path/to/file.py:function)")
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
        elif name == "timeout":
            values[name] = float(_expect(value, (int, float), key, path))
        elif name == "ignore_sdk_version":
            values[name] = _expect(value, bool, key, path)
        elif name in ("ca_bundle", "out_dir"):
            values[name] = (path.parent / _expect(value, str, key, path)).resolve()
        else:
            values[name] = _expect(value, str, key, path)
    return values


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
                    raise ConfigError(f"environment variable {variable} must be a number of seconds") from None
            else:
                values[name] = raw
            break
    for name, variable in SECRET_ENV_VARS.items():
        raw = env.get(variable)
        if raw:
            register(raw)
            values[name] = raw
    return values


def read_secret(path: Path, what: str) -> str:
    """Read a secret (password, token, cookie) from a file, strip it and register it for masking."""
    try:
        value = path.expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} file {path}: {exc.strerror}") from exc
    if not value:
        raise ConfigError(f"the {what} file {path} is empty")
    register(value)
    return value


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Merge settings: ``flags`` (``None`` values ignored) over ``env`` over the project table."""
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
    if project is not None:
        merged.update(_settings_from_table(project))
        merged["project_file"] = project
    merged.update(_settings_from_env(env))
    merged.update({k: v for k, v in (flags or {}).items() if v is not None})
    auth = merged.get("auth", "auto")
    if auth not in AUTH_MODES:
        raise ConfigError(f"unknown auth mode {auth!r}: use one of {', '.join(AUTH_MODES)}")
    if merged.get("insecure_skip_tls_verify") and merged.get("ca_bundle") and "ca_bundle" in (flags or {}):
        raise ConfigError("--ca-bundle and --insecure-skip-tls-verify contradict each other; keep one")
    return Settings(**merged)
