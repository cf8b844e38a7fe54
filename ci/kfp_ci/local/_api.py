"""Resource logic shared by both API generations: names, namespaces, lists, runs, recurring runs.

Handlers raise :class:`HttpError`; ``_app`` turns it into the body shape of the imitated generation.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import re
import tarfile
import threading
import zipfile
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import yaml

from kfp_ci._yaml import dump_yaml, load_docs
from kfp_ci.local._compat import GRPC_HTTP, Compat
from kfp_ci.local._executor import TERMINAL, Executor, set_state
from kfp_ci.local._scheduler import cron_error
from kfp_ci.local._store import Record, Store, new_id, now

if TYPE_CHECKING:
    from kfp_ci.local._app import Req, Resp

Query = Mapping[str, str]

MAX_PACKAGE = 32 << 20
OPS = {"EQUALS": 1, "NOT_EQUALS": 2, "GREATER_THAN": 3, "GREATER_THAN_EQUALS": 5, "LESS_THAN": 6,
       "LESS_THAN_EQUALS": 7, "IN": 8, "IS_SUBSTRING": 9}
OP_NAMES = {v: k for k, v in OPS.items()}
RBAC_DENIED = "RBAC: access denied"
SYSTEM = "\x00system"  # the server's own calls (scheduler): no profile check


class HttpError(Exception):
    """An error answer. ``kind`` picks the body: gateway (by generation), upload or plain text."""

    def __init__(self, code: int, message: str, *, kind: str = "gateway", status: int | None = None,
                 user_message: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status or GRPC_HTTP.get(code, 500)
        self.message = message
        self.kind = kind
        self.user_message = user_message


def bad(message: str) -> HttpError:
    return HttpError(3, f"Invalid input error: {message}", user_message=message)


def not_found(what: str, ident: str) -> HttpError:
    msg = f"{what} {ident} not found"
    return HttpError(5, f"NotFoundError: {msg}", user_message=msg)


def ts(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(int(t), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(value: Any, field: str) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        text = str(value).replace("Z", "+00:00")
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.timestamp()
    except ValueError:
        raise bad(f"{field} is not an RFC 3339 timestamp: {value!r}") from None


def clean(value: dict[str, Any]) -> dict[str, Any]:
    """protojson with EmitUnpopulated=false: drop None, '', 0, False, empty lists and maps (recursively)."""
    out: dict[str, Any] = _clean(value)
    return out


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            v = _clean(v)
            if v in (None, "", [], {}) or v is False or (type(v) in (int, float) and v == 0):
                continue
            out[k] = v
        return out
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def check_fields(body: Any, allowed: set[str], message: str) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise bad(f"{message}: the request body must be a JSON object")
    camel = {re.sub(r"_([a-z])", lambda m: m.group(1).upper(), a): a for a in allowed}
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key in allowed:
            out[key] = value
        elif key in camel:
            out[camel[key]] = value
        else:
            raise HttpError(3, f'proto: ({message}) unknown field "{key}"',
                            user_message=f'unknown field "{key}" in {message}')
    return out


def int64(value: Any, field: str) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise bad(f"{field} must be an integer, got {value!r}") from None


def enum(value: Any, names: dict[str, int], field: str) -> str:
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        for name, number in names.items():
            if number == int(value):
                return name
        raise bad(f"unknown {field} {value}")
    if value in names:
        return str(value)
    raise bad(f"unknown {field} {value!r}")


# --------------------------------------------------------------------------------------------- packages
def read_package(content: bytes, filename: str) -> tuple[bytes, dict[str, Any]]:
    """Normalise an uploaded package to YAML bytes + its first document (zip / tar.gz unpacked)."""
    if len(content) > MAX_PACKAGE:
        raise HttpError(3, "File size too large. Maximum supported size: 32MiB", kind="upload")
    lower = filename.lower()
    if not lower.endswith((".yaml", ".yml", ".json")):
        inner: bytes | None = None
        if content[:2] == b"PK":
            with zipfile.ZipFile(io.BytesIO(content)) as zf:
                names = [n for n in zf.namelist() if n.endswith((".yaml", ".yml", ".json"))]
                inner = zf.read(names[0]) if names else None
        elif content[:2] == b"\x1f\x8b":
            with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as tf:
                members = [m for m in tf.getmembers() if m.isfile() and m.name.endswith((".yaml", ".yml", ".json"))]
                extracted = tf.extractfile(members[0]) if members else None
                inner = extracted.read() if extracted else None
        if inner is None:
            raise HttpError(3, "Unexpected pipeline file format. Support .zip, .tar.gz, .json or YAML",
                            kind="upload")
        content = inner
    try:
        docs = load_docs(content)
    except yaml.YAMLError as exc:
        raise HttpError(3, f"Failed to parse the pipeline spec: {str(exc).splitlines()[0]}", kind="upload") from None
    if not docs or not isinstance(docs[0], dict):
        raise HttpError(3, "Failed to parse the pipeline spec: the file is empty or not a YAML mapping", kind="upload")
    return content, docs[0]


def spec_parameters(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Input parameters of an IR pipeline: name -> {type, default}."""
    params = ((spec.get("root") or {}).get("inputDefinitions") or {}).get("parameters") or {}
    return {k: v for k, v in params.items() if isinstance(v, dict)}


def coerce_params(spec: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """Typed values for the pipeline's parameters (v1 clients send strings)."""
    declared = spec_parameters(spec)
    out: dict[str, Any] = {}
    for name, value in given.items():
        kind = str((declared.get(name) or {}).get("parameterType", ""))
        try:
            if kind == "NUMBER_INTEGER":
                out[name] = int(float(value))
            elif kind == "NUMBER_DOUBLE":
                out[name] = float(value)
            elif kind == "BOOLEAN":
                out[name] = value if isinstance(value, bool) else str(value).lower() in ("true", "1")
            elif kind in ("LIST", "STRUCT") and isinstance(value, str):
                out[name] = json.loads(value)
            elif kind == "STRING":
                out[name] = value if isinstance(value, str) else json.dumps(value)
            else:
                out[name] = value
        except (ValueError, TypeError):
            raise bad(f"parameter {name} expects {kind}, got {value!r}") from None
    return out


# ------------------------------------------------------------------------------------------------ lists
FILTER_KEYS: dict[str, dict[str, str]] = {
    "pipeline": {"pipeline_id": "id", "id": "id", "name": "name", "display_name": "display_name",
                 "created_at": "created_at", "description": "description", "namespace": "namespace"},
    "version": {"pipeline_version_id": "id", "id": "id", "name": "name", "display_name": "display_name",
                "created_at": "created_at", "description": "description", "status": "status"},
    "experiment": {"experiment_id": "id", "id": "id", "name": "name", "display_name": "name",
                   "created_at": "created_at", "last_run_created_at": "last_run_created_at",
                   "description": "description", "namespace": "namespace", "storage_state": "storage_state"},
    "run": {"run_id": "id", "id": "id", "display_name": "name", "name": "name", "created_at": "created_at",
            "finished_at": "finished_at", "scheduled_at": "scheduled_at", "state": "state",
            "experiment_id": "experiment_id", "recurring_run_id": "recurring_run_id", "namespace": "namespace",
            "storage_state": "storage_state", "description": "description"},
    "recurring": {"recurring_run_id": "id", "id": "id", "display_name": "name", "name": "name",
                  "created_at": "created_at", "updated_at": "updated_at", "description": "description",
                  "experiment_id": "experiment_id", "namespace": "namespace"},
}
_VALUE_KEYS = ("string_value", "int_value", "long_value", "timestamp_value", "string_values", "int_values",
               "long_values", "stringValue", "intValue", "longValue", "timestampValue", "stringValues",
               "intValues", "longValues")


def _field(record: Record, key: str) -> Any:
    if key == "namespace":
        return record.get("_ns", "")
    return record.get(key)


def _predicate(pred: Any, keys: dict[str, str], op_field: str) -> Callable[[Record], bool]:
    if not isinstance(pred, dict):
        raise bad("filter predicates must be objects")
    allowed = {op_field, "key", *_VALUE_KEYS}
    for k in pred:
        if k not in allowed:
            raise bad(f'unknown field "{k}" in filter predicate')
    key = str(pred.get("key", ""))
    if key not in keys:
        raise bad(f"filter key {key!r} is not supported; use one of {sorted(keys)}")
    op = enum(pred.get(op_field, 0), OPS, "filter operation")
    field = keys[key]
    value: Any = None
    for vk in _VALUE_KEYS:
        if vk in pred:
            value = pred[vk]
            if isinstance(value, dict):
                value = value.get("values", [])
            break
    if key.endswith("_at"):
        value = [parse_ts(v, key) for v in value] if isinstance(value, list) else (
            parse_ts(value, key) if isinstance(value, str) and not value.lstrip("-").isdigit() else float(value or 0))
    elif isinstance(value, str) and key in ("id",) and False:
        pass

    def norm(v: Any) -> Any:
        if field.endswith("_at"):
            return float(v or 0)
        return "" if v is None else v

    def test(record: Record) -> bool:
        actual = norm(_field(record, field))
        target = value
        if op == "IN":
            return actual in (target or [])
        if op == "IS_SUBSTRING":
            return str(target) in str(actual)
        if isinstance(actual, (int, float)) and not isinstance(target, (int, float)):
            try:
                target = float(target)
            except (TypeError, ValueError):
                return False
        if isinstance(actual, str) and not isinstance(target, str):
            target = str(target)
        if op == "EQUALS":
            return bool(actual == target)
        if op == "NOT_EQUALS":
            return bool(actual != target)
        try:
            if op == "GREATER_THAN":
                return bool(actual > target)
            if op == "GREATER_THAN_EQUALS":
                return bool(actual >= target)
            if op == "LESS_THAN":
                return bool(actual < target)
            if op == "LESS_THAN_EQUALS":
                return bool(actual <= target)
        except TypeError:
            return False
        return False

    return test


def list_page(records: list[Record], kind: str, query: Query, *, op_field: str,
              keys: dict[str, str] | None = None) -> tuple[list[Record], int, str]:
    """Filter, sort and paginate like KFP's list_request_util: (page, total_size, next_page_token)."""
    keys = keys or FILTER_KEYS[kind]
    token = query.get("page_token") or ""
    offset = 0
    if token:
        try:
            state = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
            offset = int(state["offset"])
            query = {**query, "filter": state.get("filter", ""), "sort_by": state.get("sort_by", "")}
        except (ValueError, KeyError, TypeError):
            raise bad(f"invalid page token {token!r}") from None
    raw_filter = query.get("filter") or ""
    if raw_filter:
        try:
            parsed = json.loads(raw_filter)
        except ValueError:
            raise bad(f"filter is not valid JSON: {raw_filter!r}") from None
        if not isinstance(parsed, dict) or set(parsed) - {"predicates"}:
            raise bad("filter must be a JSON object with 'predicates'")
        tests = [_predicate(p, keys, op_field) for p in parsed.get("predicates") or []]
        records = [r for r in records if all(t(r) for t in tests)]
    sort_by = (query.get("sort_by") or "").strip()
    if sort_by:
        parts = sort_by.split()
        skey = parts[0]
        desc = len(parts) > 1 and parts[1].lower() == "desc"
        if skey not in keys or len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
            raise bad(f"Invalid sorting field: {sort_by!r}. Supported fields are: {sorted(keys)}")
        field = keys[skey]
        records = sorted(records, key=lambda r: (_sortable(_field(r, field)), r.get("_seq", 0)), reverse=desc)
    size = int64(query.get("page_size") or 0, "page_size")
    if size < 0:
        raise bad("page_size must not be negative")
    size = 20 if size == 0 else min(size, 200)
    page = records[offset: offset + size]
    next_token = ""
    if offset + size < len(records):
        next_token = base64.urlsafe_b64encode(json.dumps(
            {"offset": offset + size, "filter": raw_filter, "sort_by": sort_by}).encode()).decode()
    return page, len(records), next_token


def _sortable(v: Any) -> Any:
    if v is None:
        return (0, "")
    if isinstance(v, (int, float)):
        return (1, v)
    return (2, str(v))


# --------------------------------------------------------------------------------------------- the model
class Model:
    """Operations on the store that both API generations use, with KFP's rules."""

    def __init__(self, store: Store, executor: Executor, compat: Compat, *, multi_user: bool,
                 profiles: Mapping[str, tuple[str, ...]]) -> None:
        self.store = store
        self.executor = executor
        self.compat = compat
        self.multi_user = multi_user
        self.profiles = dict(profiles)
        self._specs: dict[str, dict[str, Any]] = {}
        self._specs_lock = threading.Lock()

    # ---------------------------------------------------------------------------------------- users
    def namespaces_of(self, user: str) -> tuple[str, ...]:
        if user in self.profiles:
            return tuple(self.profiles[user])
        slug = re.sub(r"[^a-z0-9]+", "-", user.lower()).strip("-")
        return (f"kubeflow-user-{slug}",)

    def namespace(self, user: str | None, ns: str | None, *, required: bool, what: str) -> str:
        """The namespace to use: '' in single-user mode; checked against the user's profiles otherwise."""
        if not self.multi_user:
            return ""
        ns = ns or ""
        if not ns:
            if required:
                raise bad(what)
            return ""
        self.authorize(user, ns)
        return ns

    def authorize(self, user: str | None, ns: str) -> None:
        if not self.multi_user or not ns or user == SYSTEM:
            return
        if not user:
            raise HttpError(16, "Unauthenticated: Request header error: there is no user identity header.",
                            user_message="there is no user identity header")
        if ns not in self.namespaces_of(user):
            raise HttpError(7, RBAC_DENIED, kind="plain")

    def _get(self, kind: str, ident: str, what: str, user: str | None) -> Record:
        record = self.store.get(kind, ident)
        if record is None:
            raise not_found(what, ident)
        self.authorize(user, record.get("_ns", ""))
        return record

    # ---------------------------------------------------------------------------------------- pipelines
    def pipeline(self, ident: str, user: str | None) -> Record:
        return self._get("pipeline", ident, "Pipeline", user)

    def version(self, ident: str, user: str | None, pipeline_id: str | None = None) -> Record:
        record = self.store.get("version", ident)
        if record is None or (pipeline_id and record["pipeline_id"] != pipeline_id):
            raise not_found("PipelineVersion", ident)
        self.authorize(user, record.get("_ns", ""))
        return record

    def pipeline_by_name(self, name: str, ns: str) -> Record | None:
        for p in self.store.list("pipeline", namespace=ns):
            if p["name"] == name:
                return p
        return None

    def create_pipeline(self, *, name: str, display_name: str, description: str, ns: str,
                        tags: dict[str, str] | None = None, upload: bool = False) -> Record:
        if not name:
            raise HttpError(3, "Invalid input error: pipeline's name cannot be empty", kind="upload" if upload else
                            "gateway", user_message="pipeline's name cannot be empty")
        if len(name) > 128:
            raise bad("pipeline name must be at most 128 characters")
        record: Record = {"id": new_id(), "name": name, "display_name": display_name or name,
                          "description": description, "_ns": ns, "created_at": now(), "tags": tags or {}}
        if not self.store.insert("pipeline", record, unique_name=True):
            self._duplicate(f"Failed to create a new pipeline. The name {name} already exists. "
                            "Please specify a new name", upload, pipeline=True)
        return record

    def _duplicate(self, message: str, upload: bool, *, pipeline: bool) -> None:
        if upload:
            generic = "Failed to create a pipeline version" if not pipeline else "Failed to create a pipeline"
            text = generic if self.compat.generic_upload_errors else (
                f"Failed to create a pipeline and a pipeline version. The pipeline already exists.: "
                f"Already exist error: {message}")
            raise HttpError(6, text, kind="upload", status=self.compat.duplicate_upload_status())
        raise HttpError(6, f"Already exist error: {message}", user_message=message)

    def create_version(self, pipeline: Record, *, name: str, display_name: str, description: str,
                       content: bytes, spec: dict[str, Any], upload: bool = False,
                       code_source_url: str = "", package_url: str = "", tags: dict[str, str] | None = None) -> Record:
        if not name:
            raise bad("pipeline version name cannot be empty")
        digest = self.store.put_package(content)
        record: Record = {"id": new_id(), "pipeline_id": pipeline["id"], "name": name,
                          "display_name": display_name or name, "description": description,
                          "_parent": pipeline["id"], "_ns": pipeline.get("_ns", ""), "created_at": now(),
                          "package": digest, "code_source_url": code_source_url, "package_url": package_url,
                          "tags": tags or {}, "parameters": list(spec_parameters(spec))}
        if not self.store.insert("version", record, unique_name=True):
            self._duplicate(f"Failed to create a new pipeline version. The name {name} already exist. "
                            "Specify a new name", upload, pipeline=False)
        return record

    def versions(self, pipeline_id: str) -> list[Record]:
        return self.store.list("version", parent=pipeline_id)

    def latest_version(self, pipeline_id: str) -> Record | None:
        """Newest by creation second, then by insertion order (KFP breaks same-second ties by random UUID)."""
        best: Record | None = None
        for v in self.versions(pipeline_id):  # oldest first: a later one wins a tie
            if best is None or int(v["created_at"]) >= int(best["created_at"]):
                best = v
        return best

    def spec_of(self, version: Record) -> dict[str, Any]:
        """The IR (first YAML document) of a version's package, parsed once per content hash."""
        digest = str(version["package"])
        cached = self._specs.get(digest)
        if cached is None:
            content = self.store.package(digest) or b""
            docs = load_docs(content)
            cached = docs[0] if docs and isinstance(docs[0], dict) else {}
            with self._specs_lock:
                if len(self._specs) > 256:
                    self._specs.clear()
                self._specs[digest] = cached
        return copy.deepcopy(cached)

    def delete_pipeline(self, pipeline: Record, *, cascade: bool) -> None:
        versions = self.versions(pipeline["id"])
        if versions and not cascade:
            raise HttpError(9, f"Failed to delete pipeline {pipeline['id']}. The pipeline has {len(versions)} "
                            "versions; delete them first or use cascade=true", status=400,
                            user_message="the pipeline has versions; delete them first")
        self.store.delete_where("version", [v["id"] for v in versions])
        self.store.delete("pipeline", pipeline["id"])

    # -------------------------------------------------------------------------------------- experiments
    def create_experiment(self, *, name: str, description: str, ns: str) -> Record:
        if not name:
            raise bad("Experiment name is empty. Please specify a valid experiment name")
        record: Record = {"id": new_id(), "name": name, "description": description, "_ns": ns,
                          "created_at": now(), "storage_state": "AVAILABLE", "last_run_created_at": None}
        if not self.store.insert("experiment", record, unique_name=True):
            message = f"Failed to create a new experiment. The name {name} already exists. Please specify a new name"
            raise HttpError(6, f"Already exist error: {message}", user_message=message)
        return record

    def experiment(self, ident: str, user: str | None) -> Record:
        return self._get("experiment", ident, "Experiment", user)

    def default_experiment(self, ns: str) -> Record:
        for e in self.store.list("experiment", namespace=ns):
            if e["name"] == "Default":
                return e
        try:
            return self.create_experiment(name="Default", description="All runs created without specifying an "
                                          "experiment will be grouped here.", ns=ns)
        except HttpError:
            return next(e for e in self.store.list("experiment", namespace=ns) if e["name"] == "Default")

    def set_storage(self, kind: str, ident: str, state: str) -> None:
        def change(r: Record) -> None:
            r["storage_state"] = state
        self.store.update(kind, ident, change)

    # --------------------------------------------------------------------------------------------- runs
    def resolve_source(self, *, pipeline_id: str, version_id: str, inline: dict[str, Any] | None,
                       user: str | None) -> tuple[str, str, bytes, dict[str, Any]]:
        """(pipeline_id, version_id, package bytes, IR) for a run: a version, the latest version, or inline IR."""
        if inline:
            content = dump_yaml(inline).encode()
            return "", "", content, inline
        if version_id:
            version = self.version(version_id, user)
            if pipeline_id and version["pipeline_id"] != pipeline_id:
                raise bad(f"pipeline version {version_id} does not belong to pipeline {pipeline_id}")
            return version["pipeline_id"], version["id"], self.store.package(version["package"]) or b"", \
                self.spec_of(version)
        if pipeline_id:
            self.pipeline(pipeline_id, user)
            latest = self.latest_version(pipeline_id)
            if latest is None:
                raise bad(f"pipeline {pipeline_id} has no versions")
            return pipeline_id, latest["id"], self.store.package(latest["package"]) or b"", self.spec_of(latest)
        raise bad("a run needs a pipeline version reference or a pipeline spec")

    def create_run(self, *, name: str, description: str, experiment_id: str, ns: str | None, user: str | None,
                   pipeline_id: str, version_id: str, inline: dict[str, Any] | None, params: dict[str, Any],
                   pipeline_root: str = "", service_account: str = "", recurring_run_id: str = "",
                   scheduled_at: float | None = None, extra: dict[str, Any] | None = None) -> Record:
        if experiment_id:
            experiment = self.experiment(experiment_id, user)
        elif self.multi_user and not ns:
            raise bad("Resource cannot have an empty namespace and experiment id in multi-user mode")
        else:
            experiment = self.default_experiment(self.namespace(user, ns, required=False, what=""))
        if experiment.get("storage_state") == "ARCHIVED":
            raise HttpError(9, f"Failed to create a run: experiment {experiment['id']} is archived", status=400,
                            user_message="the experiment is archived")
        pid, vid, content, spec = self.resolve_source(pipeline_id=pipeline_id, version_id=version_id,
                                                     inline=inline, user=user)
        if not name:
            raise bad("run's display name cannot be empty")
        typed = coerce_params(spec, params)
        t = now()
        record: Record = {
            "id": new_id(), "name": name, "description": description, "experiment_id": experiment["id"],
            "_ns": experiment.get("_ns", ""), "_parent": recurring_run_id, "pipeline_id": pid, "version_id": vid,
            "inline": inline is not None, "package": self.store.put_package(content), "params": params,
            "pipeline_root": pipeline_root, "service_account": service_account,
            "recurring_run_id": recurring_run_id, "created_at": t, "scheduled_at": scheduled_at or t,
            "finished_at": None, "state": "", "error": "", "state_history": [], "tasks": [],
            "storage_state": "AVAILABLE", "metrics": [], **(extra or {}),
        }
        set_state(record, "PENDING")
        self.store.insert("run", record)

        def touch(e: Record) -> None:
            e["last_run_created_at"] = t
        self.store.update("experiment", experiment["id"], touch)
        self.executor.start(record["id"], content, typed)
        return record

    def run(self, ident: str, user: str | None) -> Record:
        return self._get("run", ident, "Run", user)

    def terminate(self, ident: str, user: str | None) -> None:
        run = self.run(ident, user)
        if run["state"] in TERMINAL:
            return

        def change(r: Record) -> None:
            if r["state"] not in TERMINAL and r["state"] != "CANCELING":
                set_state(r, "CANCELING")
        self.store.update("run", run["id"], change)
        self.executor.terminate(run["id"])

    def retry(self, ident: str, user: str | None) -> Record:
        """KFP's RetryRun: a FAILED run goes back to running under the same id; any other state is a 400.

        KFP re-submits the workflow's failed nodes; the local runner has no per-task resume, so the whole pipeline
        runs again (tasks that had succeeded too), with the run's parameters.
        """
        run = self.run(ident, user)
        if run["state"] != "FAILED":
            raise HttpError(3, f"Failed to retry run {run['id']}: Workflow must be Failed/Error to retry (the run is "
                            f"{run['state']})", status=400, user_message="only a failed run can be retried")
        typed = coerce_params(self.spec_of(run), run.get("params") or {})

        def change(r: Record) -> None:
            r.update(finished_at=None, error="", tasks=[])
            set_state(r, "PENDING")
        self.store.update("run", run["id"], change)
        self.store.set_run_artifacts(run["id"], [])
        self.executor.start(run["id"], self.store.package(run["package"]) or b"", typed)
        return self.run(run["id"], user)

    def delete_run(self, ident: str, user: str | None) -> None:
        run = self.run(ident, user)
        self.executor.terminate(run["id"])
        self.store.delete("run", run["id"])

    # --------------------------------------------------------------------------------------- recurring
    def create_recurring(self, *, name: str, description: str, experiment_id: str, ns: str | None,
                         user: str | None, pipeline_id: str, version_id: str, inline: dict[str, Any] | None,
                         params: dict[str, Any], trigger: dict[str, Any], max_concurrency: int, enabled: bool,
                         no_catchup: bool, service_account: str = "", pipeline_root: str = "",
                         extra: dict[str, Any] | None = None) -> Record:
        if not name:
            raise bad("recurring run's display name cannot be empty")
        if not 1 <= max_concurrency <= 10:
            raise bad(f"max concurrency of the recurring run should be in the range of [1, 10], got {max_concurrency}")
        if trigger.get("cron"):
            err = cron_error(str(trigger["cron"]))
            if err:
                raise bad(err)
        elif trigger.get("interval") is not None:
            if float(trigger["interval"]) < 1:
                raise bad("interval_second of a periodic schedule must be at least 1")
        else:
            raise bad("a recurring run needs a trigger: cron_schedule or periodic_schedule")
        if experiment_id:
            experiment = self.experiment(experiment_id, user)
        elif self.multi_user and not ns:
            raise bad("Resource cannot have an empty namespace and experiment id in multi-user mode")
        else:
            experiment = self.default_experiment(self.namespace(user, ns, required=False, what=""))
        package = ""
        if inline:
            package = self.store.put_package(dump_yaml(inline).encode())
        elif version_id:
            self.resolve_source(pipeline_id=pipeline_id, version_id=version_id, inline=None, user=user)
        elif pipeline_id:
            self.pipeline(pipeline_id, user)
            if not self.compat.always_latest:  # before 2.5: latest resolved once, at creation
                latest = self.latest_version(pipeline_id)
                if latest is None:
                    raise bad(f"pipeline {pipeline_id} has no versions")
                version_id = latest["id"]
        else:
            raise bad("a recurring run needs a pipeline version reference or a pipeline spec")
        t = now()
        record: Record = {
            "id": new_id(), "name": name, "description": description, "experiment_id": experiment["id"],
            "_ns": experiment.get("_ns", ""), "pipeline_id": pipeline_id, "version_id": version_id,
            "package": package, "inline": bool(inline), "params": params, "trigger": trigger,
            "max_concurrency": max_concurrency, "enabled": enabled, "no_catchup": no_catchup,
            "service_account": service_account, "pipeline_root": pipeline_root, "created_at": t, "updated_at": t,
            "cursor": t, **(extra or {}),
        }
        self.store.insert("recurring", record)
        return record

    def recurring(self, ident: str, user: str | None) -> Record:
        return self._get("recurring", ident, "RecurringRun", user)

    def set_enabled(self, ident: str, user: str | None, enabled: bool) -> None:
        self.recurring(ident, user)

        def change(r: Record) -> None:
            if not r.get("enabled") and enabled:
                r["cursor"] = now() if r.get("no_catchup") else r.get("cursor", now())
            r["enabled"] = enabled
            r["updated_at"] = now()
        self.store.update("recurring", ident, change)

    def fire(self, rec: Record, scheduled_at: float) -> None:
        """Scheduler callback: one run of ``rec``; always-latest resolves the newest version now."""
        inline = None
        if rec.get("inline") and rec.get("package"):
            inline = next(d for d in load_docs(self.store.package(rec["package"]) or b"") if d)
        stamp = datetime.fromtimestamp(scheduled_at, tz=timezone.utc).strftime("%Y%m%d%H%M%S")
        try:
            self.create_run(name=f"{rec['name']}-{stamp}", description=rec.get("description", ""),
                            experiment_id=rec["experiment_id"], ns=rec.get("_ns"), user=SYSTEM,
                            pipeline_id=rec.get("pipeline_id", ""), version_id=rec.get("version_id", ""),
                            inline=inline, params=rec.get("params") or {}, pipeline_root=rec.get("pipeline_root", ""),
                            service_account=rec.get("service_account", ""), recurring_run_id=rec["id"],
                            scheduled_at=scheduled_at)
        except HttpError as exc:
            message = exc.message

            def note(r: Record) -> None:
                r["error"] = message
            self.store.update("recurring", rec["id"], note)


def resp(status: int, body: Any) -> Resp:
    """A JSON answer (``_app`` imports this module, so ``Resp`` is imported when first needed)."""
    from kfp_ci.local._app import Resp

    return Resp(status, body)


class Handlers:
    """The base of both API generations' handlers: the model, and the handlers that do not differ."""

    def __init__(self, model: Model) -> None:
        self.m = model

    def upload_target(self, req: Req) -> tuple[Record, bytes, dict[str, Any], str]:
        """An upload_version request's pipeline (query ``pipelineid``, authorized), package, spec and file name."""
        assert req.upload is not None
        content, filename = req.upload
        q = req.query
        pid = q.get("pipelineid") or ""
        if not pid:
            raise HttpError(3, "Invalid input error: Please specify a pipeline id when creating versions.",
                            kind="upload")
        pipeline = self.m.store.get("pipeline", pid)
        if pipeline is None:
            raise HttpError(5, f"Failed to create a pipeline version: pipeline {pid} not found", kind="upload")
        self.m.authorize(req.user, pipeline.get("_ns", ""))
        content, spec = read_package(content, filename)
        return pipeline, content, spec, filename

    def enable(self, req: Req) -> Resp:
        self.m.set_enabled(req.params["id"], req.user, True)
        return resp(200, {})

    def disable(self, req: Req) -> Resp:
        self.m.set_enabled(req.params["id"], req.user, False)
        return resp(200, {})

    def delete_recurring(self, req: Req) -> Resp:
        rec = self.m.recurring(req.params["id"], req.user)
        self.m.store.delete("recurring", rec["id"])
        return resp(200, {})

    def terminate_run(self, req: Req) -> Resp:
        self.m.terminate(req.params["run_id"], req.user)
        return resp(200, {})

    def delete_run(self, req: Req) -> Resp:
        self.m.delete_run(req.params["run_id"], req.user)
        return resp(200, {})

    def retry_run(self, req: Req) -> Resp:
        self.m.retry(req.params["run_id"], req.user)
        return resp(200, {})

    def archive_run(self, req: Req) -> Resp:
        r = self.m.run(req.params["run_id"], req.user)
        self.m.set_storage("run", r["id"], "ARCHIVED")
        return resp(200, {})

    def unarchive_run(self, req: Req) -> Resp:
        r = self.m.run(req.params["run_id"], req.user)
        self.m.set_storage("run", r["id"], "AVAILABLE")
        return resp(200, {})
