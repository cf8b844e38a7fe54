"""Request shapes of the two KFP API generations (v2beta1 on KFP 2.x, v1beta1 on KFP 1.x).

A dialect turns one logical operation into ``Req(method, path, params, body)``. Which features are sent depends
on the server version from healthz: ``display_name`` on uploads (>= 2.14), always-latest recurring runs (>= 2.5).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote

from kfp_ci.client._models import ServerInfo
from kfp_ci.errors import UsageError

__all__ = ["Dialect", "Req", "V1Dialect", "V2Dialect", "dialect_for", "page_params"]

Params = dict[str, str]


@dataclass(frozen=True, slots=True)
class Req:
    method: str
    path: str
    params: Params = field(default_factory=dict)
    json: Any = None


def _encode_filter(text: str) -> str:
    """Quote once more when the JSON holds ``%`` or ``+``: the API server URL-decodes filters twice."""
    return quote(text, safe="") if ("%" in text or "+" in text) else text


def page_params(page_token: str, page_size: int, sort_by: str, filter: str | None) -> Params:
    params: Params = {"page_size": str(page_size)}
    if page_token:
        params["page_token"] = page_token
    if sort_by:
        params["sort_by"] = sort_by
    if filter:
        params["filter"] = _encode_filter(filter)
    return params


class Dialect:
    api = ""
    prefix = ""
    op_key = ""
    items_keys: ClassVar[Mapping[str, str]] = {}

    def __init__(self, info: ServerInfo) -> None:
        self.info = info

    # ------------------------------------------------------------------------------------------- filters
    def name_filter(self, key: str, value: str) -> str:
        return json.dumps({"predicates": [{self.op_key: "EQUALS", "key": key, "string_value": value}]},
                          separators=(",", ":"))

    def translate_filter(self, filter: str | Mapping[str, Any] | None) -> str | None:
        """A filter in either spelling (``op``/``operation``, camelCase values) -> this dialect's JSON."""
        if filter is None or filter == "":
            return None
        if isinstance(filter, str):
            try:
                data = json.loads(filter)
            except ValueError:
                raise UsageError(f"filter is not JSON: {filter[:80]!r}") from None
        else:
            data = dict(filter)
        if not isinstance(data, Mapping) or not isinstance(data.get("predicates", []), list):
            raise UsageError('filter must be {"predicates": [{"key": ..., "operation": "EQUALS", ...}]}')
        predicates = []
        for pred in data.get("predicates", []):
            pred = dict(pred)
            op = pred.pop("operation", None)
            op = pred.pop("op", op)
            if op is not None:
                pred[self.op_key] = op
            predicates.append(pred)
        return json.dumps({**data, "predicates": predicates}, separators=(",", ":"))

    def items(self, kind: str, body: Mapping[str, Any]) -> list[Any]:
        value = body.get(self.items_keys[kind]) or []
        return list(value) if isinstance(value, list) else []

    # -------------------------------------------------------------------------- operations (overridden)
    def healthz(self) -> Req:
        return Req("GET", f"{self.prefix}/healthz")

    def get_pipeline(self, pipeline_id: str) -> Req:
        return Req("GET", f"{self.prefix}/pipelines/{_seg(pipeline_id)}")

    def delete_pipeline(self, pipeline_id: str) -> Req:
        return Req("DELETE", f"{self.prefix}/pipelines/{_seg(pipeline_id)}")

    def list_pipelines(self, namespace: str | None, page: Params) -> Req:
        raise NotImplementedError

    def pipeline_by_name(self, name: str, namespace: str | None) -> Req | None:
        return None

    def upload_pipeline(self, name: str, description: str | None, namespace: str | None,
                        display_name: str | None) -> Req:
        raise NotImplementedError

    def create_pipeline(self, name: str, description: str | None, namespace: str | None,
                        display_name: str | None) -> Req | None:
        """An empty pipeline (no version); ``None`` when the API cannot (v1beta1 needs a package URL)."""
        return None

    def upload_version(self, pipeline_id: str, name: str, description: str | None, display_name: str | None) -> Req:
        raise NotImplementedError

    def list_versions(self, pipeline_id: str, page: Params) -> Req:
        raise NotImplementedError

    def get_version(self, pipeline_id: str, version_id: str) -> Req:
        raise NotImplementedError

    def delete_version(self, pipeline_id: str, version_id: str) -> Req:
        raise NotImplementedError

    def version_template(self, version_id: str) -> Req:
        """KFP 1.x: the version's stored workflow (``{"template": "<YAML>"}``); 2.x keeps the spec on the version."""
        raise NotImplementedError

    def create_experiment(self, name: str, description: str | None, namespace: str | None) -> Req:
        raise NotImplementedError

    def get_experiment(self, experiment_id: str) -> Req:
        return Req("GET", f"{self.prefix}/experiments/{_seg(experiment_id)}")

    def list_experiments(self, namespace: str | None, page: Params) -> Req:
        raise NotImplementedError

    def create_run(self, *, experiment_id: str | None, name: str, description: str | None,
                   pipeline_id: str | None, version_id: str | None, spec: Mapping[str, Any] | None,
                   params: Mapping[str, Any], pipeline_root: str | None, service_account: str | None) -> Req:
        raise NotImplementedError

    def get_run(self, run_id: str) -> Req:
        return Req("GET", f"{self.prefix}/runs/{_seg(run_id)}")

    def list_runs(self, experiment_id: str | None, namespace: str | None, page: Params) -> Req:
        raise NotImplementedError

    def terminate_run(self, run_id: str) -> Req:
        raise NotImplementedError

    def create_recurring_run(self, *, experiment_id: str, name: str, description: str | None,
                             pipeline_id: str | None, version_id: str | None, spec: Mapping[str, Any] | None,
                             params: Mapping[str, Any], trigger: Mapping[str, Any], max_concurrency: int,
                             no_catchup: bool, enabled: bool, pipeline_root: str | None,
                             service_account: str | None) -> Req:
        raise NotImplementedError

    def recurring(self, method: str, recurring_run_id: str, action: str = "") -> Req:
        raise NotImplementedError

    def list_recurring_runs(self, experiment_id: str | None, namespace: str | None, page: Params) -> Req:
        raise NotImplementedError


def _seg(value: str) -> str:
    if not value or "/" in value:
        raise UsageError(f"invalid id {value!r}")
    return quote(value, safe="")


class V2Dialect(Dialect):
    api = "v2beta1"
    prefix = "/apis/v2beta1"
    op_key = "operation"
    items_keys: ClassVar[Mapping[str, str]] = {
        "pipelines": "pipelines", "versions": "pipeline_versions", "experiments": "experiments",
        "runs": "runs", "recurring": "recurringRuns",
    }

    def items(self, kind: str, body: Mapping[str, Any]) -> list[Any]:
        found = super().items(kind, body)
        if not found and kind == "recurring":  # tolerate the proto name too
            value = body.get("recurring_runs") or []
            found = list(value) if isinstance(value, list) else []
        return found

    def list_pipelines(self, namespace: str | None, page: Params) -> Req:
        params = dict(page)
        if namespace:
            params["namespace"] = namespace
        return Req("GET", f"{self.prefix}/pipelines", params)

    def pipeline_by_name(self, name: str, namespace: str | None) -> Req | None:
        params = {"namespace": namespace} if namespace else {}
        return Req("GET", f"{self.prefix}/pipelines/names/{quote(name, safe='')}", params)

    def upload_pipeline(self, name: str, description: str | None, namespace: str | None,
                        display_name: str | None) -> Req:
        params: Params = {"name": name}
        if display_name and self.info.at_least(2, 14):
            params["display_name"] = display_name
        if description:
            params["description"] = description
        if namespace:
            params["namespace"] = namespace
        return Req("POST", f"{self.prefix}/pipelines/upload", params)

    def create_pipeline(self, name: str, description: str | None, namespace: str | None,
                        display_name: str | None) -> Req | None:
        body: dict[str, Any] = {"display_name": display_name or name}
        if self.info.at_least(2, 14):
            body["name"] = name
        if description:
            body["description"] = description
        if namespace:
            body["namespace"] = namespace
        return Req("POST", f"{self.prefix}/pipelines", json=body)

    def upload_version(self, pipeline_id: str, name: str, description: str | None, display_name: str | None) -> Req:
        params: Params = {"name": name, "pipelineid": pipeline_id}
        if display_name and self.info.at_least(2, 14):
            params["display_name"] = display_name
        if description:
            params["description"] = description
        return Req("POST", f"{self.prefix}/pipelines/upload_version", params)

    def list_versions(self, pipeline_id: str, page: Params) -> Req:
        return Req("GET", f"{self.prefix}/pipelines/{_seg(pipeline_id)}/versions", dict(page))

    def get_version(self, pipeline_id: str, version_id: str) -> Req:
        return Req("GET", f"{self.prefix}/pipelines/{_seg(pipeline_id)}/versions/{_seg(version_id)}")

    def delete_version(self, pipeline_id: str, version_id: str) -> Req:
        return Req("DELETE", f"{self.prefix}/pipelines/{_seg(pipeline_id)}/versions/{_seg(version_id)}")

    def create_experiment(self, name: str, description: str | None, namespace: str | None) -> Req:
        body: dict[str, Any] = {"display_name": name}
        if description:
            body["description"] = description
        if namespace:
            body["namespace"] = namespace
        return Req("POST", f"{self.prefix}/experiments", json=body)

    def list_experiments(self, namespace: str | None, page: Params) -> Req:
        params = dict(page)
        if namespace:
            params["namespace"] = namespace
        return Req("GET", f"{self.prefix}/experiments", params)

    def _source(self, body: dict[str, Any], pipeline_id: str | None, version_id: str | None,
                spec: Mapping[str, Any] | None) -> None:
        if spec is not None:
            body["pipeline_spec"] = dict(spec.get("pipeline_spec", spec))
            if spec.get("platform_spec"):
                body["pipeline_spec"] = {"pipeline_spec": body["pipeline_spec"], "platform_spec": spec["platform_spec"]}
            return
        ref: dict[str, str] = {"pipeline_id": str(pipeline_id)}
        if version_id:
            ref["pipeline_version_id"] = version_id
        body["pipeline_version_reference"] = ref

    def _config(self, params: Mapping[str, Any], pipeline_root: str | None) -> dict[str, Any]:
        config: dict[str, Any] = {"parameters": dict(params)}
        if pipeline_root:
            config["pipeline_root"] = pipeline_root
        return config

    def create_run(self, *, experiment_id: str | None, name: str, description: str | None,
                   pipeline_id: str | None, version_id: str | None, spec: Mapping[str, Any] | None,
                   params: Mapping[str, Any], pipeline_root: str | None, service_account: str | None) -> Req:
        body: dict[str, Any] = {"display_name": name}
        if experiment_id:
            body["experiment_id"] = experiment_id
        if description:
            body["description"] = description
        self._source(body, pipeline_id, version_id, spec)
        body["runtime_config"] = self._config(params, pipeline_root)
        if service_account:
            body["service_account"] = service_account
        return Req("POST", f"{self.prefix}/runs", json=body)

    def list_runs(self, experiment_id: str | None, namespace: str | None, page: Params) -> Req:
        params = dict(page)
        if experiment_id:
            params["experiment_id"] = experiment_id
        if namespace:
            params["namespace"] = namespace
        return Req("GET", f"{self.prefix}/runs", params)

    def terminate_run(self, run_id: str) -> Req:
        return Req("POST", f"{self.prefix}/runs/{_seg(run_id)}:terminate")

    def create_recurring_run(self, *, experiment_id: str, name: str, description: str | None,
                             pipeline_id: str | None, version_id: str | None, spec: Mapping[str, Any] | None,
                             params: Mapping[str, Any], trigger: Mapping[str, Any], max_concurrency: int,
                             no_catchup: bool, enabled: bool, pipeline_root: str | None,
                             service_account: str | None) -> Req:
        body: dict[str, Any] = {"display_name": name, "experiment_id": experiment_id}
        if description:
            body["description"] = description
        self._source(body, pipeline_id, version_id, spec)
        body["runtime_config"] = self._config(params, pipeline_root)
        body["max_concurrency"] = str(max_concurrency)
        body["trigger"] = dict(trigger)
        body["mode"] = "ENABLE" if enabled else "DISABLE"
        body["no_catchup"] = no_catchup
        if service_account:
            body["service_account"] = service_account
        return Req("POST", f"{self.prefix}/recurringruns", json=body)

    def recurring(self, method: str, recurring_run_id: str, action: str = "") -> Req:
        suffix = f":{action}" if action else ""
        return Req(method, f"{self.prefix}/recurringruns/{_seg(recurring_run_id)}{suffix}")

    def list_recurring_runs(self, experiment_id: str | None, namespace: str | None, page: Params) -> Req:
        params = dict(page)
        if experiment_id:
            params["experiment_id"] = experiment_id
        if namespace:
            params["namespace"] = namespace
        return Req("GET", f"{self.prefix}/recurringruns", params)


class V1Dialect(Dialect):
    api = "v1beta1"
    prefix = "/apis/v1beta1"
    op_key = "op"
    items_keys: ClassVar[Mapping[str, str]] = {
        "pipelines": "pipelines", "versions": "versions", "experiments": "experiments",
        "runs": "runs", "recurring": "jobs",
    }

    @staticmethod
    def _ref_key(params: Params, kind: str, ident: str, prefix: str = "resource_reference_key") -> Params:
        return {**params, f"{prefix}.type": kind, f"{prefix}.id": ident}

    @staticmethod
    def _refs(*pairs: tuple[str, str | None, str]) -> list[dict[str, Any]]:
        return [{"key": {"type": kind, "id": ident}, "relationship": rel} for kind, ident, rel in pairs if ident]

    def list_pipelines(self, namespace: str | None, page: Params) -> Req:
        # KFP 1.x pipelines have no namespace: they are global.
        return Req("GET", f"{self.prefix}/pipelines", dict(page))

    def upload_pipeline(self, name: str, description: str | None, namespace: str | None,
                        display_name: str | None) -> Req:
        params: Params = {"name": name}
        if description:
            params["description"] = description
        return Req("POST", f"{self.prefix}/pipelines/upload", params)

    def upload_version(self, pipeline_id: str, name: str, description: str | None, display_name: str | None) -> Req:
        params: Params = {"name": name, "pipelineid": pipeline_id}
        if description:
            params["description"] = description
        return Req("POST", f"{self.prefix}/pipelines/upload_version", params)

    def list_versions(self, pipeline_id: str, page: Params) -> Req:
        return Req("GET", f"{self.prefix}/pipeline_versions",
                   self._ref_key(page, "PIPELINE", pipeline_id, prefix="resource_key"))

    def get_version(self, pipeline_id: str, version_id: str) -> Req:
        return Req("GET", f"{self.prefix}/pipeline_versions/{_seg(version_id)}")

    def delete_version(self, pipeline_id: str, version_id: str) -> Req:
        return Req("DELETE", f"{self.prefix}/pipeline_versions/{_seg(version_id)}")

    def version_template(self, version_id: str) -> Req:
        return Req("GET", f"{self.prefix}/pipeline_versions/{_seg(version_id)}/templates")

    def create_experiment(self, name: str, description: str | None, namespace: str | None) -> Req:
        body: dict[str, Any] = {"name": name}
        if description:
            body["description"] = description
        refs = self._refs(("NAMESPACE", namespace, "OWNER"))
        if refs:
            body["resource_references"] = refs
        return Req("POST", f"{self.prefix}/experiments", json=body)

    def list_experiments(self, namespace: str | None, page: Params) -> Req:
        params = self._ref_key(page, "NAMESPACE", namespace) if namespace else dict(page)
        return Req("GET", f"{self.prefix}/experiments", params)

    def _spec(self, pipeline_id: str | None, version_id: str | None, spec: Mapping[str, Any] | None,
              params: Mapping[str, Any]) -> dict[str, Any]:
        if spec is not None:
            raise UsageError("running a pipeline package directly needs a KFP 2.x server: upload it first")
        out: dict[str, Any] = {"parameters": [{"name": k, "value": _v1_value(v)} for k, v in params.items()]}
        if pipeline_id and not version_id:
            out["pipeline_id"] = pipeline_id
        return out

    def create_run(self, *, experiment_id: str | None, name: str, description: str | None,
                   pipeline_id: str | None, version_id: str | None, spec: Mapping[str, Any] | None,
                   params: Mapping[str, Any], pipeline_root: str | None, service_account: str | None) -> Req:
        body: dict[str, Any] = {"name": name, "pipeline_spec": self._spec(pipeline_id, version_id, spec, params)}
        if description:
            body["description"] = description
        refs = self._refs(("EXPERIMENT", experiment_id, "OWNER"), ("PIPELINE_VERSION", version_id, "CREATOR"))
        if refs:
            body["resource_references"] = refs
        if service_account:
            body["service_account"] = service_account
        return Req("POST", f"{self.prefix}/runs", json=body)

    def list_runs(self, experiment_id: str | None, namespace: str | None, page: Params) -> Req:
        if experiment_id:
            params = self._ref_key(page, "EXPERIMENT", experiment_id)
        elif namespace:
            params = self._ref_key(page, "NAMESPACE", namespace)
        else:
            params = dict(page)
        return Req("GET", f"{self.prefix}/runs", params)

    def terminate_run(self, run_id: str) -> Req:
        return Req("POST", f"{self.prefix}/runs/{_seg(run_id)}/terminate")

    def create_recurring_run(self, *, experiment_id: str, name: str, description: str | None,
                             pipeline_id: str | None, version_id: str | None, spec: Mapping[str, Any] | None,
                             params: Mapping[str, Any], trigger: Mapping[str, Any], max_concurrency: int,
                             no_catchup: bool, enabled: bool, pipeline_root: str | None,
                             service_account: str | None) -> Req:
        v1_trigger: dict[str, Any] = {}
        for key, value in trigger.items():
            value = dict(value)
            if "interval_second" in value:
                value["interval_second"] = str(value["interval_second"])
            v1_trigger[key] = value
        body: dict[str, Any] = {
            "name": name,
            "pipeline_spec": self._spec(pipeline_id, version_id, spec, params),
            "resource_references": self._refs(("EXPERIMENT", experiment_id, "OWNER"),
                                              ("PIPELINE_VERSION", version_id, "CREATOR")),
            "max_concurrency": str(max_concurrency),
            "trigger": v1_trigger,
            "enabled": enabled,
            "no_catchup": no_catchup,
        }
        if description:
            body["description"] = description
        if service_account:
            body["service_account"] = service_account
        return Req("POST", f"{self.prefix}/jobs", json=body)

    def recurring(self, method: str, recurring_run_id: str, action: str = "") -> Req:
        suffix = f"/{action}" if action else ""
        return Req(method, f"{self.prefix}/jobs/{_seg(recurring_run_id)}{suffix}")

    def list_recurring_runs(self, experiment_id: str | None, namespace: str | None, page: Params) -> Req:
        if experiment_id:
            params = self._ref_key(page, "EXPERIMENT", experiment_id)
        elif namespace:
            params = self._ref_key(page, "NAMESPACE", namespace)
        else:
            params = dict(page)
        return Req("GET", f"{self.prefix}/jobs", params)


def _v1_value(value: Any) -> str:
    """v1 parameters are strings; lists and dicts are JSON-encoded like the 1.8 SDK did."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def dialect_for(info: ServerInfo) -> Dialect:
    return V1Dialect(info) if info.api == "v1beta1" else V2Dialect(info)

