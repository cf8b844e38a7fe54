"""The :class:`Client`: KFP's REST API over httpx, with kfp.Client's method and argument names."""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from kfp_ci.client._dialect import Dialect, Req, V2Dialect, dialect_for, page_params
from kfp_ci.client._http import (
    api_error,
    build_http_client,
    decode_json,
    html_error,
    is_html,
    looks_like_login,
    normalize_host,
)
from kfp_ci.client._models import (
    TERMINAL_STATES,
    Experiment,
    ExperimentPage,
    Pipeline,
    PipelinePage,
    PipelineVersion,
    PipelineVersionPage,
    RecurringRun,
    RecurringRunPage,
    Run,
    RunPage,
    ServerInfo,
    parse_datetime,
)
from kfp_ci.client._retry import RetryPolicy
from kfp_ci.errors import (
    ApiError,
    AuthError,
    Conflict,
    ConnectError,
    KfpCiError,
    NotFound,
    ServerError,
    TimeoutExpired,
    UsageError,
)

__all__ = ["Client"]

_MAX_PACKAGE = 32 * 1024 * 1024
_PACKAGE_SUFFIXES = (".yaml", ".yml", ".json", ".zip", ".tar.gz", ".tgz")
_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_AMBIGUOUS = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
_SERVER_PAGE = 100
_MAX_PAGES = 1000

J = TypeVar("J")


class Client:
    """A KFP API client. ``host`` is the dashboard (``/pipeline`` is added when needed), ``…/pipeline`` or the
    API service (``http://ml-pipeline.kubeflow:8888``); it must have a scheme.

    ``namespace`` is the default for every namespaced call (``None`` = shared / single-user). ``auth`` is any
    ``httpx.Auth`` (:class:`BearerToken`, :class:`TokenFile`, :class:`CookieAuth`, a dashboard session...).
    ``verify`` is ``True`` (system CAs, or ``SSL_CERT_FILE``/``REQUESTS_CA_BUNDLE``), a CA bundle path, an
    ``ssl.SSLContext`` or ``False`` (warns). ``retry`` bounds retries of idempotent calls.
    """

    def __init__(
        self,
        host: str | None = None,
        *,
        namespace: str | None = None,
        auth: httpx.Auth | None = None,
        verify: bool | str | os.PathLike[str] | ssl.SSLContext = True,
        timeout: float | httpx.Timeout = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        event_hooks: Mapping[str, list[Any]] | None = None,
    ) -> None:
        if host is None:
            host = os.environ.get("KFP_CI_HOST") or os.environ.get("KF_PIPELINES_ENDPOINT")
        self._base = normalize_host(host or "")
        self.namespace = namespace or None
        self.retry = retry or RetryPolicy()
        self.request_count = 0
        hooks: dict[str, list[Any]] = {k: list(v) for k, v in (event_hooks or {}).items()}
        hooks.setdefault("request", []).insert(0, self._count)
        self._http = build_http_client(auth=auth, verify=verify, timeout=timeout, transport=transport,
                                       event_hooks=hooks)
        self._server: ServerInfo | None = None
        self._dialect: Dialect | None = None

    # ------------------------------------------------------------------------------------------ lifecycle
    def _count(self, request: httpx.Request) -> None:
        self.request_count += 1

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self._base!r}, namespace={self.namespace!r})"

    # ------------------------------------------------------------------------------------------- server
    @property
    def host(self) -> str:
        """The base URL in use (``/pipeline`` appended once detection found KFP there)."""
        return self._base

    @property
    def http(self) -> httpx.Client:
        """The underlying httpx session, with auth, TLS, proxies and timeouts applied: for endpoints next to the
        KFP REST API (the dashboard's ``/api/workgroup/env-info``, ML Metadata's gRPC-web route)."""
        return self._http

    @property
    def server(self) -> ServerInfo:
        """API generation, version and multi-user mode, from one (lazy) healthz call."""
        if self._server is None:
            self._server = self._detect()
            self._dialect = dialect_for(self._server)
        return self._server

    @property
    def dialect(self) -> Dialect:
        self.server  # noqa: B018 - detection sets the dialect
        assert self._dialect is not None
        return self._dialect

    def get_kfp_healthz(self, sleep_duration: float = 5) -> ServerInfo:
        """Check the server now (a fresh healthz) and return what it says."""
        self._server = None
        return self.server

    def _healthz(self, base: str, api: str) -> httpx.Response:
        budget = self.retry.budget()
        while True:
            budget.next_try()
            try:
                response = self._http.get(f"{base}/apis/{api}/healthz")
            except _UNSENT + _AMBIGUOUS as exc:
                if budget.wait():
                    continue
                raise self._connect_error(exc) from None
            except httpx.HTTPError as exc:
                raise self._transport_error(exc) from None
            if response.status_code in _RETRY_STATUSES and budget.wait(_retry_after(response)):
                continue
            return response

    def _detect(self) -> ServerInfo:
        base = self._base
        response = self._healthz(base, "v2beta1")
        if is_html(response) and not base.endswith("/pipeline") and not looks_like_login(response):
            # The dashboard serves its page at every path: KFP lives under /pipeline.
            retry = self._healthz(base + "/pipeline", "v2beta1")
            if not is_html(retry) and retry.status_code < 500:
                base, response = base + "/pipeline", retry
        api = "v2beta1"
        kfp1_ui = is_html(response) and response.status_code < 400 and not looks_like_login(response)
        if (response.status_code == 404 and not is_html(response)) or kfp1_ui:
            # KFP 1.x has no v2beta1 API: the API server answers 404, its UI server its own page.
            v1 = self._healthz(base, "v1beta1")
            if v1.status_code < 400 and not is_html(v1):
                api, response = "v1beta1", v1
        if response.status_code >= 400:
            raise api_error(response, action="healthz")
        body = decode_json(response)
        if not isinstance(body, Mapping) or not any(
            k in body for k in ("multi_user", "tag_name", "commit_sha", "apiServerReady", "pipeline_store")
        ):
            raise html_error(response) if is_html(response) else ServerError(
                f"{response.url} answered JSON that is not a KFP healthz: check the host"
            )
        if body.get("apiServerReady") is False:
            raise ServerError("the KFP UI answered but its API server is not ready (apiServerReady: false)",
                              hint="retry later or check the ml-pipeline deployment")
        self._base = base
        version = str(body.get("tag_name") or body.get("apiServerTagName") or "")
        multi = body.get("multi_user", body.get("apiServerMultiUser", False))
        major = ServerInfo("", version, False).version_tuple[:1]
        if major and major[0] < 2:
            api = "v1beta1"  # a KFP 1.x that answers the v2 healthz path still has only the v1beta1 API
        return ServerInfo(
            api=api,
            version=version,
            multi_user=bool(multi),
            pipeline_store=body.get("pipeline_store") or body.get("pipelineStore"),
            via_ui="apiServerReady" in body,
        )

    # ------------------------------------------------------------------------------------------ sending
    def _connect_error(self, exc: Exception) -> ConnectError:
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, _AMBIGUOUS):
            reason = f"{type(exc).__name__}: {reason}"
        hint = "check the host and the network"
        if "CERTIFICATE_VERIFY_FAILED" in reason or "SSL" in reason:
            hint = "the TLS certificate is not trusted: pass --ca-bundle or set SSL_CERT_FILE to your CA"
        return ConnectError(f"cannot reach {self._base}: {reason}", hint=hint)

    def _transport_error(self, exc: httpx.HTTPError) -> KfpCiError:
        if isinstance(exc, httpx.TooManyRedirects):
            return AuthError(f"{self._base} redirected too many times (a login redirect loop?)",
                             hint="log in again or check the auth settings")
        if isinstance(exc, httpx.ProxyError):
            return ConnectError(f"the HTTP proxy failed: {exc}", hint="check HTTPS_PROXY / HTTP_PROXY / NO_PROXY")
        return self._connect_error(exc)

    def _ns(self, namespace: str | None) -> str | None:
        return self.namespace if namespace is None else (namespace or None)

    def _call(
        self,
        req: Req,
        *,
        idempotent: bool,
        action: str,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        recover: Callable[[], Mapping[str, Any] | None] | None = None,
    ) -> Any:
        """Send ``req``; JSON of the answer or one kfp_ci error. Retries per the policy and the call's safety."""
        budget = self.retry.budget()
        ambiguous = False
        while True:
            budget.next_try()
            try:
                response = self._http.request(req.method, self._base + req.path, params=req.params or None,
                                              json=req.json, files=files)
            except _UNSENT as exc:
                if budget.wait():
                    continue
                raise self._connect_error(exc) from None
            except _AMBIGUOUS as exc:
                ambiguous = True
                if not idempotent:
                    found = self._recover(recover)
                    if found is not None:
                        return found
                if budget.wait():
                    continue
                raise self._connect_error(exc) from None
            except httpx.HTTPError as exc:
                raise self._transport_error(exc) from None
            status = response.status_code
            if status in _RETRY_STATUSES and not is_html(response):
                if idempotent or status in (429, 503):
                    if budget.wait(_retry_after(response)):
                        continue
                else:  # 502/504: the upstream may have done it
                    ambiguous = True
                    found = self._recover(recover)
                    if found is not None:
                        return found
                    if budget.wait(_retry_after(response)):
                        continue
            if status == 404 and ambiguous and req.method == "DELETE":
                return {}  # the earlier, interrupted attempt deleted it
            if status >= 400:
                raise api_error(response, action=action)
            return decode_json(response)

    def _recover(self, recover: Callable[[], Mapping[str, Any] | None] | None) -> Mapping[str, Any] | None:
        if recover is None:
            return None
        return recover()

    def _get(self, req: Req, action: str) -> Any:
        return self._call(req, idempotent=True, action=action)

    def _list(self, kind: str, make: Callable[[dict[str, str]], Req], parse: Callable[[Any], J], *,
              page_token: str, page_size: int | None, sort_by: str, filter: str | Mapping[str, Any] | None,
              action: str) -> tuple[list[J], str, int | None]:
        dialect = self.dialect
        text = dialect.translate_filter(filter)
        items: list[J] = []
        token = page_token or ""
        total: int | None = None
        seen: set[str] = set()
        for _ in range(_MAX_PAGES):
            size = min(200, page_size - len(items)) if page_size else _SERVER_PAGE
            body = self._get(make(page_params(token, size, sort_by, text)), action)
            got = dialect.items(kind, body) if isinstance(body, Mapping) else []
            items.extend(parse(raw) for raw in got)
            token = str(body.get("next_page_token") or "") if isinstance(body, Mapping) else ""
            if isinstance(body, Mapping) and body.get("total_size") is not None:
                total = int(body["total_size"])
            if not token or not got or token in seen or (page_size and len(items) >= page_size):
                break
            seen.add(token)
        if page_size and len(items) > page_size:
            items = items[:page_size]
        return items, token, total

    # ---------------------------------------------------------------------------------------- pipelines
    def get_pipeline(self, pipeline_id: str) -> Pipeline:
        return Pipeline.from_json(self._get(self.dialect.get_pipeline(pipeline_id), f"get pipeline {pipeline_id}"))

    def list_pipelines(self, page_token: str = "", page_size: int | None = None, sort_by: str = "",
                       filter: str | Mapping[str, Any] | None = None, namespace: str | None = None) -> PipelinePage:
        """Pipelines (all pages, or at most ``page_size``)."""
        ns = self._ns(namespace)
        items, token, total = self._list("pipelines", lambda p: self.dialect.list_pipelines(ns, p), Pipeline.from_json,
                                         page_token=page_token, page_size=page_size, sort_by=sort_by, filter=filter,
                                         action="list pipelines")
        return PipelinePage(tuple(items), token, total)

    def _find_pipeline_raw(self, name: str, namespace: str | None) -> Mapping[str, Any] | None:
        dialect = self.dialect
        by_name = dialect.pipeline_by_name(name, namespace)
        if by_name is not None:
            try:
                found = self._get(by_name, f"find pipeline {name!r}")
            except NotFound as exc:
                if str(getattr(exc, "body", "")).lstrip().startswith("{"):
                    return None  # the API's own "not found"
                found = None  # no such route (an old or partial server): fall back to a filtered list
            else:
                return found if isinstance(found, Mapping) and found else None
        req = dialect.list_pipelines(namespace, page_params("", 10, "", dialect.name_filter("name", name)))
        body = self._get(req, f"find pipeline {name!r}")
        for raw in dialect.items("pipelines", body):
            if (raw.get("name") or raw.get("display_name")) == name:
                return dict(raw)
        return None

    def get_pipeline_id(self, name: str, namespace: str | None = None) -> str | None:
        """The id of the pipeline named ``name`` in ``namespace`` (default: the client's), or ``None``."""
        raw = self._find_pipeline_raw(name, self._ns(namespace))
        return Pipeline.from_json(raw).pipeline_id if raw else None

    def upload_pipeline(self, pipeline_package_path: str | os.PathLike[str], pipeline_name: str | None = None,
                        description: str | None = None, namespace: str | None = None, *,
                        display_name: str | None = None) -> Pipeline:
        """Upload a new pipeline (its first version is named after it). Duplicate name -> Conflict."""
        filename, data = _read_package(pipeline_package_path)
        name = pipeline_name or _package_name(filename, data)
        if not name.strip():
            raise UsageError("the pipeline name is empty: pass --name or set pipelineInfo.name")
        ns = self._ns(namespace)
        req = self.dialect.upload_pipeline(name, description, ns, display_name)
        try:
            raw = self._call(req, idempotent=False, action=f"upload pipeline {name!r}",
                             files={"uploadfile": (filename, data, "application/octet-stream")},
                             recover=lambda: self._find_pipeline_raw(name, ns))
        except Conflict as exc:
            where = f"namespace {ns}" if ns else "the shared namespace"
            raise Conflict(exc.status, f"pipeline {name!r} already exists in {where}",
                           hint="upload a new version of it instead") from None
        return Pipeline.from_json(raw)

    def create_pipeline(self, pipeline_name: str, description: str | None = None, namespace: str | None = None,
                        *, display_name: str | None = None) -> Pipeline:
        """Create a pipeline with no version (KFP 2.x), so that its first version can get a chosen name."""
        if not pipeline_name.strip():
            raise UsageError("the pipeline name is empty")
        ns = self._ns(namespace)
        req = self.dialect.create_pipeline(pipeline_name, description, ns, display_name)
        if req is None:
            raise ApiError(501, f"creating an empty pipeline needs the v2beta1 API (server: {self.server.api})")
        raw = self._call(req, idempotent=False, action=f"create pipeline {pipeline_name!r}",
                         recover=lambda: self._find_pipeline_raw(pipeline_name, ns))
        return Pipeline.from_json(raw)

    def upload_pipeline_version(self, pipeline_package_path: str | os.PathLike[str], pipeline_version_name: str,
                                pipeline_id: str | None = None, pipeline_name: str | None = None,
                                description: str | None = None, *, display_name: str | None = None,
                                namespace: str | None = None) -> PipelineVersion:
        """Upload a version of an existing pipeline (by id, or by name in ``namespace``)."""
        if bool(pipeline_id) == bool(pipeline_name):
            raise UsageError("give exactly one of pipeline_id and pipeline_name")
        if not pipeline_version_name.strip():
            raise UsageError("the pipeline version name is empty")
        filename, data = _read_package(pipeline_package_path)
        if pipeline_name:
            found = self.get_pipeline_id(pipeline_name, namespace)
            if found is None:
                where = self._ns(namespace) or "the shared namespace"
                raise NotFound(404, f"pipeline {pipeline_name!r} not found in {where}")
            pipeline_id = found
        assert pipeline_id is not None
        pid = pipeline_id
        req = self.dialect.upload_version(pid, pipeline_version_name, description, display_name)
        try:
            raw = self._call(req, idempotent=False, action=f"upload version {pipeline_version_name!r}",
                             files={"uploadfile": (filename, data, "application/octet-stream")},
                             recover=lambda: self._find_version_raw(pid, pipeline_version_name))
        except Conflict as exc:  # since 2.15 the server's text is generic: say what clashed
            raise Conflict(exc.status, f"pipeline {pid} already has a version named {pipeline_version_name!r}",
                           hint="choose another version name") from None
        return PipelineVersion.from_json(raw, pid)

    def _find_version_raw(self, pipeline_id: str, name: str) -> Mapping[str, Any] | None:
        dialect = self.dialect
        req = dialect.list_versions(pipeline_id, page_params("", 10, "", dialect.name_filter("name", name)))
        body = self._get(req, f"find version {name!r}")
        for raw in dialect.items("versions", body):
            if (raw.get("name") or raw.get("display_name")) == name:
                return dict(raw)
        return None

    def list_pipeline_versions(self, pipeline_id: str, page_token: str = "", page_size: int | None = None,
                               sort_by: str = "", filter: str | Mapping[str, Any] | None = None) -> PipelineVersionPage:
        items, token, total = self._list(
            "versions", lambda p: self.dialect.list_versions(pipeline_id, p),
            lambda raw: PipelineVersion.from_json(raw, pipeline_id), page_token=page_token, page_size=page_size,
            sort_by=sort_by, filter=filter, action=f"list versions of pipeline {pipeline_id}")
        return PipelineVersionPage(tuple(items), token, total)

    def get_pipeline_version(self, pipeline_id: str, pipeline_version_id: str) -> PipelineVersion:
        raw = self._get(self.dialect.get_version(pipeline_id, pipeline_version_id),
                        f"get pipeline version {pipeline_version_id}")
        return PipelineVersion.from_json(raw, pipeline_id)

    def get_pipeline_version_template(self, pipeline_version_id: str) -> str:
        """KFP 1.x (v1beta1): the workflow YAML the server keeps for a version (KFP keeps the spec, not the file)."""
        raw = self._get(self.dialect.version_template(pipeline_version_id),
                        f"get the template of pipeline version {pipeline_version_id}")
        template = raw.get("template") if isinstance(raw, Mapping) else None
        return template if isinstance(template, str) else ""

    def delete_pipeline(self, pipeline_id: str) -> None:
        """Delete a pipeline (KFP 2.x refuses while it has versions; 1.x deletes them with it)."""
        self._call(self.dialect.delete_pipeline(pipeline_id), idempotent=True, action=f"delete pipeline {pipeline_id}")

    def delete_pipeline_version(self, pipeline_id: str, pipeline_version_id: str) -> None:
        self._call(self.dialect.delete_version(pipeline_id, pipeline_version_id), idempotent=True,
                   action=f"delete pipeline version {pipeline_version_id}")

    # -------------------------------------------------------------------------------------- experiments
    def _find_experiment_raw(self, name: str, namespace: str | None) -> Mapping[str, Any] | None:
        dialect = self.dialect
        key = "display_name" if isinstance(dialect, V2Dialect) else "name"
        req = dialect.list_experiments(namespace, page_params("", 10, "", dialect.name_filter(key, name)))
        body = self._get(req, f"find experiment {name!r}")
        for raw in dialect.items("experiments", body):
            if (raw.get("display_name") or raw.get("name")) == name:
                return dict(raw)
        return None

    def create_experiment(self, name: str, description: str | None = None,
                          namespace: str | None = None) -> Experiment:
        """Get the experiment named ``name`` in ``namespace``, creating it when absent."""
        ns = self._ns(namespace)
        found = self._find_experiment_raw(name, ns)
        if found is not None:
            return Experiment.from_json(found)
        try:
            raw = self._call(self.dialect.create_experiment(name, description, ns), idempotent=False,
                             action=f"create experiment {name!r}", recover=lambda: self._find_experiment_raw(name, ns))
        except Conflict:  # created concurrently
            found = self._find_experiment_raw(name, ns)
            if found is None:
                raise
            raw = found
        return Experiment.from_json(raw)

    def get_experiment(self, experiment_id: str | None = None, experiment_name: str | None = None,
                       namespace: str | None = None) -> Experiment:
        if experiment_id:
            return Experiment.from_json(self._get(self.dialect.get_experiment(experiment_id),
                                                  f"get experiment {experiment_id}"))
        if not experiment_name:
            raise UsageError("give experiment_id or experiment_name")
        ns = self._ns(namespace)
        found = self._find_experiment_raw(experiment_name, ns)
        if found is None:
            raise NotFound(404, f"experiment {experiment_name!r} not found in {ns or 'the default namespace'}")
        return Experiment.from_json(found)

    def list_experiments(self, page_token: str = "", page_size: int | None = None, sort_by: str = "",
                         namespace: str | None = None, filter: str | Mapping[str, Any] | None = None) -> ExperimentPage:
        ns = self._ns(namespace)
        items, token, total = self._list("experiments", lambda p: self.dialect.list_experiments(ns, p),
                                         Experiment.from_json, page_token=page_token, page_size=page_size,
                                         sort_by=sort_by, filter=filter, action="list experiments")
        return ExperimentPage(tuple(items), token, total)

    # --------------------------------------------------------------------------------------------- runs
    def run_pipeline(self, experiment_id: str | None = None, job_name: str = "", pipeline_package_path:
                     str | os.PathLike[str] | None = None, params: Mapping[str, Any] | None = None,
                     pipeline_id: str | None = None, version_id: str | None = None, pipeline_root: str | None = None,
                     enable_caching: bool | None = None, cache_key: str | None = None,
                     service_account: str | None = None, *, description: str | None = None) -> Run:
        """Start a run of a pipeline version (``version_id`` omitted = the latest) or of a local package."""
        if not job_name.strip():
            raise UsageError("the run needs a name (job_name)")
        spec = _load_spec(pipeline_package_path, enable_caching) if pipeline_package_path else None
        if spec is None and not pipeline_id:
            raise UsageError("give pipeline_id (and optionally version_id) or pipeline_package_path")
        req = self.dialect.create_run(experiment_id=experiment_id, name=job_name, description=description,
                                      pipeline_id=pipeline_id, version_id=version_id, spec=spec,
                                      params=dict(params or {}), pipeline_root=pipeline_root,
                                      service_account=service_account)
        started = datetime.now(timezone.utc)
        raw = self._call(req, idempotent=False, action=f"create run {job_name!r}",
                         recover=lambda: self._find_run_raw(job_name, experiment_id, started))
        return Run.from_json(raw)

    def _find_run_raw(self, name: str, experiment_id: str | None, since: datetime) -> Mapping[str, Any] | None:
        """A run named ``name`` created by this call (not before it started, 5 s clock slack)."""
        dialect = self.dialect
        key = "display_name" if isinstance(dialect, V2Dialect) else "name"
        req = dialect.list_runs(experiment_id, self.namespace if not experiment_id else None,
                                page_params("", 20, "created_at desc", dialect.name_filter(key, name)))
        body = self._get(req, f"find run {name!r}")
        for raw in dialect.items("runs", body):
            run = Run.from_json(raw)
            if run.display_name == name and (run.created_at is None or run.created_at >= since - timedelta(seconds=5)):
                return dict(raw)
        return None

    def get_run_raw(self, run_id: str) -> Mapping[str, Any]:
        """The run as the server's API generation answers it (e.g. v1beta1's ``run.metrics``), unparsed."""
        body: Mapping[str, Any] = self._get(self.dialect.get_run(run_id), f"get run {run_id}")
        return body

    def get_run(self, run_id: str) -> Run:
        return Run.from_json(self._get(self.dialect.get_run(run_id), f"get run {run_id}"))

    def list_runs(self, page_token: str = "", page_size: int | None = None, sort_by: str = "",
                  experiment_id: str | None = None, namespace: str | None = None,
                  filter: str | Mapping[str, Any] | None = None) -> RunPage:
        ns = self._ns(namespace)
        items, token, total = self._list("runs", lambda p: self.dialect.list_runs(experiment_id, ns, p),
                                         Run.from_json, page_token=page_token, page_size=page_size, sort_by=sort_by,
                                         filter=filter, action="list runs")
        return RunPage(tuple(items), token, total)

    def terminate_run(self, run_id: str) -> None:
        self._call(self.dialect.terminate_run(run_id), idempotent=True, action=f"terminate run {run_id}")

    def wait_for_run_completion(self, run_id: str, timeout: float, sleep_duration: float = 5.0, *,
                                max_sleep: float = 30.0, clock: Callable[[], float] = time.monotonic,
                                sleep: Callable[[float], None] = time.sleep) -> Run:
        """Poll until the run is SUCCEEDED, FAILED, SKIPPED or CANCELED; TimeoutExpired after ``timeout`` s.

        Polls start every ``sleep_duration`` seconds and back off by 1.5x up to ``max_sleep``.
        """
        deadline = clock() + timeout
        delay = max(0.0, sleep_duration)
        while True:
            run = self.get_run(run_id)
            if run.state in TERMINAL_STATES:
                return run
            left = deadline - clock()
            if left <= 0:
                raise TimeoutExpired(f"run {run_id} is still {run.state} after {timeout:g} s")
            sleep(min(delay, left))
            delay = min(max(delay * 1.5, 0.1), max(max_sleep, sleep_duration))

    # --------------------------------------------------------------------------------------- recurring
    def create_recurring_run(self, experiment_id: str, job_name: str, description: str | None = None,
                             start_time: str | datetime | None = None, end_time: str | datetime | None = None,
                             interval_second: int | None = None, cron_expression: str | None = None,
                             max_concurrency: int = 1, no_catchup: bool | None = None,
                             params: Mapping[str, Any] | None = None,
                             pipeline_package_path: str | os.PathLike[str] | None = None,
                             pipeline_id: str | None = None, version_id: str | None = None, enabled: bool = True,
                             pipeline_root: str | None = None, enable_caching: bool | None = None,
                             cache_key: str | None = None, service_account: str | None = None) -> RecurringRun:
        """Create a recurring run. ``pipeline_id`` without ``version_id`` = always the latest version (KFP >= 2.5)."""
        if (interval_second is None) == (cron_expression is None):
            raise UsageError("give exactly one of cron_expression and interval_second")
        if interval_second is not None and interval_second < 1:
            raise UsageError("interval_second must be at least 1")
        if not 1 <= max_concurrency <= 10:
            raise UsageError("max_concurrency must be between 1 and 10")
        if not job_name.strip():
            raise UsageError("the recurring run needs a name (job_name)")
        spec = _load_spec(pipeline_package_path, enable_caching) if pipeline_package_path else None
        if spec is None:
            if not pipeline_id:
                raise UsageError("give pipeline_id (and optionally version_id) or pipeline_package_path")
            info = self.server
            if not version_id and (info.api != "v2beta1" or not info.at_least(2, 5)):
                raise UsageError(
                    f"a recurring run that follows the latest version needs KFP >= 2.5 (server: {info.version or '?'}"
                    f", {info.api}): pass version_id"
                )
        schedule: dict[str, Any] = {}
        if start_time is not None:
            schedule["start_time"] = _rfc3339(start_time)
        if end_time is not None:
            schedule["end_time"] = _rfc3339(end_time)
        if cron_expression is not None:
            trigger = {"cron_schedule": {**schedule, "cron": cron_expression}}
        else:
            trigger = {"periodic_schedule": {**schedule, "interval_second": str(interval_second)}}
        req = self.dialect.create_recurring_run(
            experiment_id=experiment_id, name=job_name, description=description, pipeline_id=pipeline_id,
            version_id=version_id, spec=spec, params=dict(params or {}), trigger=trigger,
            max_concurrency=max_concurrency, no_catchup=bool(no_catchup), enabled=enabled,
            pipeline_root=pipeline_root, service_account=service_account)
        raw = self._call(req, idempotent=False, action=f"create recurring run {job_name!r}",
                         recover=lambda: self._find_recurring_raw(job_name, experiment_id))
        return RecurringRun.from_json(raw)

    def _find_recurring_raw(self, name: str, experiment_id: str) -> Mapping[str, Any] | None:
        dialect = self.dialect
        key = "display_name" if isinstance(dialect, V2Dialect) else "name"
        req = dialect.list_recurring_runs(experiment_id, None, page_params("", 20, "", dialect.name_filter(key, name)))
        body = self._get(req, f"find recurring run {name!r}")
        for raw in dialect.items("recurring", body):
            if (raw.get("display_name") or raw.get("name")) == name:
                return dict(raw)
        return None

    def get_recurring_run(self, recurring_run_id: str, job_id: str | None = None) -> RecurringRun:
        rid = recurring_run_id or job_id or ""
        return RecurringRun.from_json(self._get(self.dialect.recurring("GET", rid), f"get recurring run {rid}"))

    def list_recurring_runs(self, page_token: str = "", page_size: int | None = None, sort_by: str = "",
                            experiment_id: str | None = None, namespace: str | None = None,
                            filter: str | Mapping[str, Any] | None = None) -> RecurringRunPage:
        ns = self._ns(namespace)
        items, token, total = self._list(
            "recurring", lambda p: self.dialect.list_recurring_runs(experiment_id, ns, p), RecurringRun.from_json,
            page_token=page_token, page_size=page_size, sort_by=sort_by, filter=filter, action="list recurring runs")
        return RecurringRunPage(tuple(items), token, total)

    def enable_recurring_run(self, recurring_run_id: str) -> None:
        self._call(self.dialect.recurring("POST", recurring_run_id, "enable"), idempotent=True,
                   action=f"enable recurring run {recurring_run_id}")

    def disable_recurring_run(self, recurring_run_id: str) -> None:
        self._call(self.dialect.recurring("POST", recurring_run_id, "disable"), idempotent=True,
                   action=f"disable recurring run {recurring_run_id}")

    def delete_recurring_run(self, recurring_run_id: str) -> None:
        self._call(self.dialect.recurring("DELETE", recurring_run_id), idempotent=True,
                   action=f"delete recurring run {recurring_run_id}")


# ---------------------------------------------------------------------------------------------- helpers
def _retry_after(response: httpx.Response) -> float | None:
    from kfp_ci.client._retry import parse_retry_after

    return parse_retry_after(response.headers.get("retry-after"))


def _rfc3339(value: str | datetime) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if parse_datetime(value) is None:
        raise UsageError(f"not an RFC 3339 time: {value!r} (e.g. 2026-01-01T00:00:00Z)")
    return value


def _read_package(path: str | os.PathLike[str]) -> tuple[str, bytes]:
    file = Path(path)
    if not file.name.lower().endswith(_PACKAGE_SUFFIXES):
        raise UsageError(f"{file}: a pipeline package must end in .yaml, .yml, .json, .zip, .tar.gz or .tgz")
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{file}: no such file (compile the pipeline first)") from None
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from None
    if len(data) > _MAX_PACKAGE:
        raise UsageError(f"{file} is {len(data) // (1024 * 1024)} MiB: KFP accepts at most 32 MiB")
    return file.name, data


def _package_name(filename: str, data: bytes) -> str:
    """``pipelineInfo.name`` of a compiled YAML/JSON package (like kfp.Client), else the file stem."""
    lowered = filename.lower()
    if lowered.endswith((".yaml", ".yml", ".json")):
        try:
            docs = _parse_docs(data)
        except UsageError:
            docs = []
        if docs and isinstance(docs[0].get("pipelineInfo"), Mapping) and docs[0]["pipelineInfo"].get("name"):
            return str(docs[0]["pipelineInfo"]["name"])
    for suffix in _PACKAGE_SUFFIXES:
        if lowered.endswith(suffix):
            return filename[: -len(suffix)]
    return filename


def _parse_docs(data: bytes) -> list[Mapping[str, Any]]:
    import yaml  # only for the calls that read a package

    from kfp_ci._yaml import load_docs

    try:
        docs = load_docs(data.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UsageError(f"the pipeline package is not valid YAML/JSON: {str(exc).splitlines()[0]}") from None
    if not docs or not all(isinstance(d, Mapping) for d in docs):
        raise UsageError("the pipeline package is not a compiled KFP pipeline (expected a YAML mapping)")
    return docs


def _load_spec(path: str | os.PathLike[str], enable_caching: bool | None) -> dict[str, Any]:
    filename, data = _read_package(path)
    if not filename.lower().endswith((".yaml", ".yml", ".json")):
        raise UsageError(f"{filename}: running a package directly needs a YAML or JSON file")
    docs = _parse_docs(data)
    spec = dict(docs[0])
    if enable_caching is not None:
        _set_caching(spec, enable_caching)
    out: dict[str, Any] = {"pipeline_spec": spec}
    if len(docs) > 1:
        out["platform_spec"] = dict(docs[1])
    return out


def _set_caching(spec: dict[str, Any], enabled: bool) -> None:
    dags = [spec.get("root", {}).get("dag", {})]
    dags += [c.get("dag", {}) for c in (spec.get("components") or {}).values() if isinstance(c, Mapping)]
    for dag in dags:
        for task in (dag.get("tasks") or {}).values():
            task.setdefault("cachingOptions", {})["enableCache"] = enabled

