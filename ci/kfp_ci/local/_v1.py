"""v1beta1 routes, as KFP 1.x clients call them (also served by 2.x backends)."""

from __future__ import annotations

import json
from typing import Any

import yaml

from kfp_ci.local._fields import check_fields, clean, int64, parse_ts, ts
from kfp_ci.local._handlers import Handlers
from kfp_ci.local._http import HttpError, Req, Resp, Router, bad
from kfp_ci.local._http import resp as _resp
from kfp_ci.local._lists import Scope, list_page
from kfp_ci.local._model import Model
from kfp_ci.local._packages import load_bounded, read_package, spec_parameters
from kfp_ci.local._store import Record

P = "/apis/v1beta1"
STATUS = {"PENDING": "Pending", "RUNNING": "Running", "SUCCEEDED": "Succeeded", "FAILED": "Failed",
          "CANCELING": "Terminating", "CANCELED": "Failed", "SKIPPED": "Skipped"}
RUN_FIELDS = {"id", "name", "storage_state", "description", "pipeline_spec", "resource_references",
              "service_account", "created_at", "scheduled_at", "finished_at", "status", "error", "metrics"}
JOB_FIELDS = {"id", "name", "description", "pipeline_spec", "resource_references", "service_account",
              "max_concurrency", "trigger", "mode", "created_at", "updated_at", "status", "error", "enabled",
              "no_catchup"}
SPEC_FIELDS = {"pipeline_id", "pipeline_name", "workflow_manifest", "pipeline_manifest", "parameters",
               "runtime_config"}
EXPERIMENT_FIELDS = {"id", "name", "description", "created_at", "resource_references", "storage_state"}
FILTER_KEYS = {
    "pipeline": {"id": "id", "name": "name", "created_at": "created_at", "description": "description",
                 "namespace": "namespace"},
    "version": {"id": "id", "name": "name", "created_at": "created_at", "description": "description"},
    "experiment": {"id": "id", "name": "name", "created_at": "created_at", "description": "description",
                   "storage_state": "storage_state"},
    "run": {"id": "id", "name": "name", "created_at": "created_at", "finished_at": "finished_at",
            "scheduled_at": "scheduled_at", "status": "state", "description": "description"},
    "recurring": {"id": "id", "name": "name", "created_at": "created_at", "updated_at": "updated_at",
                  "description": "description"},
}


def _ref(kind: str, ident: str, relationship: str, name: str = "") -> dict[str, Any]:
    return clean({"key": {"type": kind, "id": ident}, "name": name, "relationship": relationship})


def _refs(body: dict[str, Any]) -> dict[str, str]:
    """{type: id} from resource_references."""
    out: dict[str, str] = {}
    for ref in body.get("resource_references") or []:
        ref = check_fields(ref, {"key", "name", "relationship"}, "api.ResourceReference")
        key = check_fields(ref.get("key") or {}, {"type", "id"}, "api.ResourceKey")
        out[str(key.get("type") or "")] = str(key.get("id") or "")
    return out


class V1(Handlers):
    # ------------------------------------------------------------------------------------------ render
    def _params(self, spec: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for name, p in spec_parameters(spec).items():
            default = p.get("defaultValue")
            entry: dict[str, Any] = {"name": name}
            if default is not None:
                entry["value"] = default if isinstance(default, str) else json.dumps(default)
            out.append(entry)
        return out

    def _v1_params_of_argo(self, spec: dict[str, Any]) -> list[dict[str, Any]]:
        params = ((spec.get("spec") or {}).get("arguments") or {}).get("parameters") or []
        return [clean({"name": p.get("name"), "value": p.get("value")}) for p in params if isinstance(p, dict)]

    def version(self, v: Record) -> dict[str, Any]:
        spec = self.m.spec_of(v)
        params = self._params(spec) if "root" in spec else self._v1_params_of_argo(spec)
        return clean({
            "id": v["id"], "name": v["name"], "created_at": ts(v["created_at"]), "parameters": params,
            "code_source_url": v.get("code_source_url"), "description": v.get("description"),
            "package_url": {"pipeline_url": v.get("package_url")} if v.get("package_url") else None,
            "resource_references": [_ref("PIPELINE", v["pipeline_id"], "OWNER")],
        })

    def pipeline(self, p: Record) -> dict[str, Any]:
        latest = self.m.default_version(p)
        default = self.version(latest) if latest else None
        refs = [_ref("NAMESPACE", p["_ns"], "OWNER")] if p.get("_ns") else []
        return clean({"id": p["id"], "created_at": ts(p["created_at"]), "name": p["name"],
                      "description": p.get("description"),
                      "parameters": (default or {}).get("parameters"), "default_version": default,
                      "resource_references": refs})

    def experiment(self, e: Record) -> dict[str, Any]:
        refs = [_ref("NAMESPACE", e["_ns"], "OWNER")] if e.get("_ns") else []
        return clean({"id": e["id"], "name": e["name"], "description": e.get("description"),
                      "created_at": ts(e["created_at"]), "resource_references": refs,
                      "storage_state": "STORAGESTATE_" + str(e.get("storage_state", "AVAILABLE"))})

    def _name(self, kind: str, ident: str) -> str:
        record = self.m.store.get(kind, ident) if ident else None
        return str(record.get("name") or "") if record else ""

    def _spec_and_refs(self, r: Record) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        params = [{"name": k, "value": v if isinstance(v, str) else json.dumps(v)}
                  for k, v in (r.get("params") or {}).items()]
        spec: dict[str, Any] = {"pipeline_id": r.get("pipeline_id"), "parameters": params,
                                "pipeline_name": self._name("pipeline", str(r.get("pipeline_id") or ""))}
        # KFP 1.x copies the version's workflow into each run made from it; inline specs are shown everywhere
        if r.get("package") and (r.get("inline") or self.m.compat.generation == "1.8"):
            doc = self.m.spec_shared(r)
            spec["workflow_manifest" if "root" not in doc else "pipeline_manifest"] = json.dumps(doc)
        refs = []
        if r.get("experiment_id"):
            refs.append(_ref("EXPERIMENT", r["experiment_id"], "OWNER", self._name("experiment", r["experiment_id"])))
        if r.get("recurring_run_id"):  # a run its recurring run (job) created
            refs.append(_ref("JOB", r["recurring_run_id"], "CREATOR", self._name("recurring", r["recurring_run_id"])))
        if r.get("version_id"):
            refs.append(_ref("PIPELINE_VERSION", r["version_id"], "CREATOR", self._name("version", r["version_id"])))
        if r.get("_ns"):
            refs.append(_ref("NAMESPACE", r["_ns"], "OWNER", r["_ns"]))
        return clean(spec), refs

    def run(self, r: Record) -> dict[str, Any]:
        spec, refs = self._spec_and_refs(r)
        metrics = [clean(dict(m)) for m in r.get("metrics") or []]
        return clean({
            "id": r["id"], "name": r["name"], "storage_state": "STORAGESTATE_" + str(r.get("storage_state")),
            "description": r.get("description"), "pipeline_spec": spec, "resource_references": refs,
            "service_account": r.get("service_account"), "created_at": ts(r["created_at"]),
            "scheduled_at": ts(r.get("scheduled_at")), "finished_at": ts(r.get("finished_at")),
            "status": STATUS.get(r.get("state", ""), ""), "error": r.get("error"), "metrics": metrics,
        })

    def workflow_status(self, r: Record) -> dict[str, Any]:
        """The run as the Argo workflow KFP 1.x stores in ``pipeline_runtime.workflow_manifest``: a ``status`` with
        the workflow's DAG node and one Pod node per task (its phase, times, message, children), as KFP 1.8's UI
        reads it. A run the server executed as an Argo workflow (a kfp 1.8 package) has its real nodes: DAG,
        TaskGroup, Pod and Skipped, with Argo's ids, names, boundaries and children."""
        argo = [t for t in r.get("tasks") or [] if isinstance(t, dict) and t.get("node_id")]
        if argo:
            return self._argo_status(r, argo)
        _, _, tasks = self.m.task_details(r)
        workflow = tasks[0]["pod_name"].split("-system-container-impl-")[0] if tasks else f"run-{r['id'][:5]}"
        by_id = {t["task_id"]: t for t in tasks}
        nodes: dict[str, Any] = {}
        top = []
        for t in tasks:
            parent = by_id.get(t["parent_task_id"])
            if parent is None:
                top.append(t["pod_name"])
            nodes[t["pod_name"]] = clean({
                "id": t["pod_name"], "name": f"{workflow}.{t['name']}", "displayName": t["name"], "type": "Pod",
                "templateName": t["name"], "phase": STATUS.get(str(t.get("state") or ""), "Pending"),
                "boundaryID": parent["pod_name"] if parent else workflow, "startedAt": ts(t.get("start")),
                "finishedAt": ts(t.get("end")), "message": t.get("error"),
                "children": [c["pod_name"] for c in t["child_tasks"]],
            })
        first = {t["pod_name"] for t in tasks} - {c for n in nodes.values() for c in n.get("children", [])}
        nodes[workflow] = clean({
            "id": workflow, "name": workflow, "displayName": workflow, "type": "DAG", "templateName": workflow,
            "phase": STATUS.get(str(r.get("state") or ""), "Pending"), "startedAt": ts(r.get("created_at")),
            "finishedAt": ts(r.get("finished_at")), "children": sorted(first & set(top)),
        })
        return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                "metadata": clean({"name": workflow, "namespace": r.get("_ns")}),
                "status": clean({"phase": STATUS.get(str(r.get("state") or ""), ""), "startedAt": ts(r["created_at"]),
                                 "finishedAt": ts(r.get("finished_at")), "message": r.get("error"),
                                 "nodes": nodes})}

    def _argo_status(self, r: Record, nodes_in: list[Record]) -> dict[str, Any]:
        root = next((t for t in nodes_in if not t.get("parent_id")), nodes_in[0])
        workflow = str(root["node_id"])
        nodes = {str(t["node_id"]): clean({
            "id": t["node_id"], "name": t.get("node_name"), "displayName": t.get("display_name") or t.get("name"),
            "type": t.get("type"), "templateName": t.get("template"), "phase": t.get("phase"),
            "boundaryID": t.get("boundary_id") or None, "startedAt": ts(t.get("start")), "finishedAt": ts(t.get("end")),
            "message": t.get("message") or t.get("error") or None, "children": t.get("children") or None,
            "inputs": (t.get("argo") or {}).get("inputs") or None,
            "outputs": (t.get("argo") or {}).get("outputs") or None,
        }) for t in nodes_in}
        return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                "metadata": clean({"name": workflow, "namespace": r.get("_ns")}),
                "status": clean({"phase": STATUS.get(str(r.get("state") or ""), ""), "startedAt": ts(r["created_at"]),
                                 "finishedAt": ts(r.get("finished_at")), "message": r.get("error"),
                                 "nodes": nodes})}

    def run_detail(self, r: Record) -> dict[str, Any]:
        runtime = {"workflow_manifest": json.dumps(self.workflow_status(r))}
        return {"run": self.run(r), "pipeline_runtime": runtime}

    def job(self, rec: Record) -> dict[str, Any]:
        trig = rec["trigger"]
        window = {"start_time": ts(trig.get("start")), "end_time": ts(trig.get("end"))}
        if trig.get("cron"):
            trigger = {"cron_schedule": {**window, "cron": trig["cron"]}}
        else:
            trigger = {"periodic_schedule": {**window, "interval_second": str(int(trig["interval"]))}}
        spec, refs = self._spec_and_refs(rec)
        if rec.get("pipeline_id") and not rec.get("version_id"):
            refs.append(_ref("PIPELINE", rec["pipeline_id"], "CREATOR"))
        return clean({
            "id": rec["id"], "name": rec["name"], "description": rec.get("description"), "pipeline_spec": spec,
            "resource_references": refs, "service_account": rec.get("service_account"),
            "max_concurrency": str(rec["max_concurrency"]), "trigger": clean(trigger),
            "mode": "ENABLED" if rec.get("enabled") else "DISABLED", "created_at": ts(rec["created_at"]),
            "updated_at": ts(rec.get("updated_at")), "status": "Enabled" if rec.get("enabled") else "Disabled",
            "error": rec.get("error"), "enabled": bool(rec.get("enabled")), "no_catchup": rec.get("no_catchup"),
        })

    # ----------------------------------------------------------------------------------------- helpers
    def _list(self, kind: str, scope: Scope, req: Req, key: str, render: Any) -> Resp:
        page, total, token = list_page(self.m.store, kind, req.query, op_field="op", keys=FILTER_KEYS[kind],
                                       scope=scope)
        return _resp(200, clean({key: [render(r) for r in page], "total_size": total, "next_page_token": token}))

    def _query_ns(self, req: Req, required_msg: str | None) -> str | None:
        if not self.m.multi_user:
            return None
        ns = ""
        if req.query.get("resource_reference_key.type") == "NAMESPACE":
            ns = req.query.get("resource_reference_key.id", "")
        if not ns and required_msg:
            raise bad(required_msg)
        self.m.authorize(req.user, ns)
        return ns

    # ----------------------------------------------------------------------------------------- pipelines
    def upload(self, req: Req) -> Resp:
        assert req.upload is not None
        content, filename = req.upload
        q = req.query
        name = q.get("name") or filename
        ns = self.m.namespace(req.user, q.get("namespace"), required=False, what="")
        if self.m.compat.generation == "1.8":
            ns = ""
        content, spec = read_package(content, filename)
        p = self.m.create_pipeline(name=name, display_name=name, description=q.get("description", ""), ns=ns,
                                   upload=True)
        try:
            self.m.create_version(p, name=name, display_name=name, description=q.get("description", ""),
                                  content=content, spec=spec, upload=True)
        except HttpError:
            self.m.store.delete("pipeline", p["id"])
            raise
        return _resp(200, self.pipeline(p))

    def upload_version(self, req: Req) -> Resp:
        pipeline, content, spec, filename = self.upload_target(req)
        q = req.query
        name = q.get("name") or filename
        v = self.m.create_version(pipeline, name=name, display_name=name, description=q.get("description", ""),
                                  content=content, spec=spec, upload=True,
                                  code_source_url=q.get("code_source_url", ""))
        return _resp(200, self.version(v))

    def list_pipelines(self, req: Req) -> Resp:
        ns = self._query_ns(req, None)
        return self._list("pipeline", Scope(namespace=ns), req, "pipelines", self.pipeline)

    def get_pipeline(self, req: Req) -> Resp:
        return _resp(200, self.pipeline(self.m.pipeline(req.params["id"], req.user)))

    def pipeline_by_name(self, req: Req) -> Resp:
        ns = req.params["namespace"]
        ns = "" if ns == "-" else ns
        self.m.authorize(req.user, ns)
        p = self.m.pipeline_by_name(req.params["name"], ns if self.m.multi_user else "")
        if p is None:
            raise HttpError(5, f"Pipeline {req.params['name']} not found", user_message="pipeline not found")
        return _resp(200, self.pipeline(p))

    def delete_pipeline(self, req: Req) -> Resp:
        p = self.m.pipeline(req.params["id"], req.user)
        self.m.delete_pipeline(p, cascade=True)
        return _resp(200, {})

    def template(self, req: Req) -> Resp:
        p = self.m.pipeline(req.params["id"], req.user)
        latest = self.m.default_version(p)
        if latest is None:
            raise HttpError(5, "the pipeline has no versions", user_message="the pipeline has no versions")
        return _resp(200, {"template": (self.m.store.package(latest["package"]) or b"").decode()})

    def version_template(self, req: Req) -> Resp:
        v = self.m.version(req.params["version_id"], req.user)
        return _resp(200, {"template": (self.m.store.package(v["package"]) or b"").decode()})

    def list_versions(self, req: Req) -> Resp:
        if req.query.get("resource_key.type", "PIPELINE") != "PIPELINE" or not req.query.get("resource_key.id"):
            raise bad("ListPipelineVersions needs resource_key.type=PIPELINE and resource_key.id")
        p = self.m.pipeline(req.query["resource_key.id"], req.user)
        return self._list("version", Scope(parent=p["id"]), req, "versions", self.version)

    def get_version(self, req: Req) -> Resp:
        return _resp(200, self.version(self.m.version(req.params["version_id"], req.user)))

    def delete_version(self, req: Req) -> Resp:
        v = self.m.version(req.params["version_id"], req.user)
        self.m.store.delete("version", v["id"])
        return _resp(200, {})

    def set_default_version(self, req: Req) -> Resp:
        pipeline = self.m.pipeline(req.params["pipeline_id"], req.user)
        version = self.m.version(req.params["version_id"], req.user, pipeline["id"])

        def change(p: Record) -> None:
            p["default_version_id"] = version["id"]
        self.m.store.update("pipeline", pipeline["id"], change)
        return _resp(200, {})

    def create_version(self, req: Req) -> Resp:
        raise bad("the embedded server cannot download package URLs; use /apis/v1beta1/pipelines/upload_version")

    # --------------------------------------------------------------------------------------- experiments
    def create_experiment(self, req: Req) -> Resp:
        body = check_fields(req.json(), EXPERIMENT_FIELDS, "api.Experiment")
        refs = _refs(body)
        if refs and not self.m.multi_user:
            raise bad("In single-user mode, CreateExperimentRequest shouldn't contain resource references.")
        ns = self.m.namespace(req.user, refs.get("NAMESPACE"), required=True,
                              what="In multi-user mode, CreateExperimentRequest needs a namespace resource reference")
        e = self.m.create_experiment(name=str(body.get("name") or ""), description=str(body.get("description") or ""),
                                     ns=ns)
        return _resp(200, self.experiment(e))

    def list_experiments(self, req: Req) -> Resp:
        ns = self._query_ns(req, "In multi-user mode, ListExperiment must filter by namespace")
        return self._list("experiment", Scope(namespace=ns), req, "experiments", self.experiment)

    def get_experiment(self, req: Req) -> Resp:
        return _resp(200, self.experiment(self.m.experiment(req.params["id"], req.user)))

    def delete_experiment(self, req: Req) -> Resp:
        e = self.m.experiment(req.params["id"], req.user)
        self.m.store.delete("experiment", e["id"])
        return _resp(200, {})

    def archive_experiment(self, req: Req) -> Resp:
        e = self.m.experiment(req.params["id"], req.user)
        self.m.set_storage("experiment", e["id"], "ARCHIVED")
        return _resp(200, {})

    def unarchive_experiment(self, req: Req) -> Resp:
        e = self.m.experiment(req.params["id"], req.user)
        self.m.set_storage("experiment", e["id"], "AVAILABLE")
        return _resp(200, {})

    # ---------------------------------------------------------------------------------------------- runs
    def _source(self, body: dict[str, Any]) -> tuple[str, str, dict[str, Any] | None, dict[str, Any], dict[str, str]]:
        spec = check_fields(body.get("pipeline_spec") or {}, SPEC_FIELDS, "api.PipelineSpec")
        refs = _refs(body)
        inline = None
        for key in ("pipeline_manifest", "workflow_manifest"):
            if spec.get(key):
                try:
                    inline = json.loads(spec[key]) if isinstance(spec[key], str) else spec[key]
                except ValueError:
                    try:
                        inline = next(iter(load_bounded(spec[key], "gateway")), None)
                    except yaml.YAMLError:
                        raise bad(f"pipeline_spec.{key} is neither JSON nor YAML") from None
        params: dict[str, Any] = {}
        for p in spec.get("parameters") or []:
            p = check_fields(p, {"name", "value"}, "api.Parameter")
            params[str(p.get("name"))] = p.get("value", "")
        config = spec.get("runtime_config") or {}
        params.update(config.get("parameters") or {})
        vid = refs.get("PIPELINE_VERSION", "")
        pid = str(spec.get("pipeline_id") or refs.get("PIPELINE", "") or "")
        if pid and not vid and not inline:  # KFP 1.x: a pipeline id alone means its default version
            pipeline = self.m.store.get("pipeline", pid)
            latest = self.m.default_version(pipeline) if pipeline is not None else None
            if latest is None:
                raise bad(f"pipeline {pid} has no versions")
            vid = latest["id"]
        return pid, vid, inline, params, refs

    def create_run(self, req: Req) -> Resp:
        body = check_fields(req.json(), RUN_FIELDS, "api.Run")
        pid, vid, inline, params, refs = self._source(body)
        r = self.m.create_run(
            name=str(body.get("name") or ""), description=str(body.get("description") or ""),
            experiment_id=refs.get("EXPERIMENT", ""), ns=refs.get("NAMESPACE"), user=req.user, pipeline_id=pid,
            version_id=vid, inline=inline, params=params, service_account=str(body.get("service_account") or ""))
        return _resp(200, self.run_detail(r))

    def get_run(self, req: Req) -> Resp:
        return _resp(200, self.run_detail(self.m.run(req.params["run_id"], req.user)))

    def list_runs(self, req: Req) -> Resp:
        q = req.query
        if q.get("resource_reference_key.type") == "EXPERIMENT" and q.get("resource_reference_key.id"):
            exp = self.m.experiment(q["resource_reference_key.id"], req.user)
            scope = Scope(experiment_id=exp["id"])
        else:
            scope = Scope(namespace=self._query_ns(req, "In multi-user mode, ListRuns must filter by namespace or "
                                                   "experiment"))
        return self._list("run", scope, req, "runs", self.run)

    def report_metrics(self, req: Req) -> Resp:
        run = self.m.run(req.params["run_id"], req.user)
        body = check_fields(req.json(), {"run_id", "metrics"}, "api.ReportRunMetricsRequest")
        results = []
        accepted: list[dict[str, Any]] = []
        for metric in body.get("metrics") or []:
            metric = check_fields(metric, {"name", "node_id", "number_value", "format"}, "api.RunMetric")
            name, node = str(metric.get("name") or ""), str(metric.get("node_id") or "")
            result: dict[str, Any] = {"metric_name": name, "metric_node_id": node, "status": "OK"}
            if not name or not node or "number_value" not in metric:
                result.update(status="INVALID_ARGUMENT", message="name, node_id and number_value are required")
            else:
                try:
                    value = float(metric["number_value"])
                    accepted.append(clean({"name": name, "node_id": node, "number_value": value,
                                           "format": metric.get("format")}) | {"number_value": value})
                except (TypeError, ValueError):
                    result.update(status="INVALID_ARGUMENT", message="number_value must be a number")
            results.append(result)

        def change(r: Record) -> None:
            existing = {(m["name"], m["node_id"]): m for m in r.get("metrics") or []}
            for m in accepted:
                existing[(m["name"], m["node_id"])] = m
            r["metrics"] = list(existing.values())
        self.m.store.update("run", run["id"], change)
        return _resp(200, {"results": results})

    # ---------------------------------------------------------------------------------------------- jobs
    def create_job(self, req: Req) -> Resp:
        body = check_fields(req.json(), JOB_FIELDS, "api.Job")
        pid, vid, inline, params, refs = self._source(body)
        if refs.get("PIPELINE") and not refs.get("PIPELINE_VERSION") and not inline and self.m.compat.always_latest:
            vid = ""  # a PIPELINE reference alone: always the newest version (>= 2.5)
        trig = check_fields(body.get("trigger") or {}, {"cron_schedule", "periodic_schedule"}, "api.Trigger")
        trigger: dict[str, Any] = {}
        if trig.get("cron_schedule"):
            c = check_fields(trig["cron_schedule"], {"start_time", "end_time", "cron"}, "api.CronSchedule")
            trigger = {"cron": str(c.get("cron") or ""), "start": parse_ts(c.get("start_time"), "start_time"),
                       "end": parse_ts(c.get("end_time"), "end_time")}
        elif trig.get("periodic_schedule"):
            s = check_fields(trig["periodic_schedule"], {"start_time", "end_time", "interval_second"},
                             "api.PeriodicSchedule")
            trigger = {"interval": int64(s.get("interval_second") or 0, "interval_second"),
                       "start": parse_ts(s.get("start_time"), "start_time"),
                       "end": parse_ts(s.get("end_time"), "end_time")}
        rec = self.m.create_recurring(
            name=str(body.get("name") or ""), description=str(body.get("description") or ""),
            experiment_id=refs.get("EXPERIMENT", ""), ns=refs.get("NAMESPACE"), user=req.user, pipeline_id=pid,
            version_id=vid, inline=inline, params=params, trigger=trigger,
            max_concurrency=int64(body.get("max_concurrency") or 1, "max_concurrency"),
            enabled=bool(body.get("enabled")), no_catchup=bool(body.get("no_catchup")),
            service_account=str(body.get("service_account") or ""))
        return _resp(200, self.job(rec))

    def get_job(self, req: Req) -> Resp:
        return _resp(200, self.job(self.m.recurring(req.params["id"], req.user)))

    def list_jobs(self, req: Req) -> Resp:
        q = req.query
        if q.get("resource_reference_key.type") == "EXPERIMENT" and q.get("resource_reference_key.id"):
            exp = self.m.experiment(q["resource_reference_key.id"], req.user)
            scope = Scope(experiment_id=exp["id"])
        else:
            scope = Scope(namespace=self._query_ns(req, "In multi-user mode, ListJobs must filter by namespace or "
                                                   "experiment"))
        return self._list("recurring", scope, req, "jobs", self.job)



def register(router: Router, model: Model) -> V1:
    v = V1(model)
    add = router.add
    add("POST", f"{P}/pipelines/upload", v.upload)
    add("POST", f"{P}/pipelines/upload_version", v.upload_version)
    add("GET", f"{P}/pipelines", v.list_pipelines)
    add("GET", f"{P}/pipelines/{{id}}", v.get_pipeline)
    add("DELETE", f"{P}/pipelines/{{id}}", v.delete_pipeline)
    add("GET", f"{P}/pipelines/{{id}}/templates", v.template)
    add("POST", f"{P}/pipelines/{{pipeline_id}}/default_version/{{version_id}}", v.set_default_version)
    if model.compat.generation != "1.8":
        add("GET", f"{P}/namespaces/{{namespace}}/pipelines/{{name}}", v.pipeline_by_name)
    add("GET", f"{P}/pipeline_versions", v.list_versions)
    add("POST", f"{P}/pipeline_versions", v.create_version)
    add("GET", f"{P}/pipeline_versions/{{version_id}}", v.get_version)
    add("DELETE", f"{P}/pipeline_versions/{{version_id}}", v.delete_version)
    add("GET", f"{P}/pipeline_versions/{{version_id}}/templates", v.version_template)
    add("POST", f"{P}/experiments", v.create_experiment)
    add("GET", f"{P}/experiments", v.list_experiments)
    add("GET", f"{P}/experiments/{{id}}", v.get_experiment)
    add("DELETE", f"{P}/experiments/{{id}}", v.delete_experiment)
    add("POST", f"{P}/experiments/{{id}}:archive", v.archive_experiment)
    add("POST", f"{P}/experiments/{{id}}:unarchive", v.unarchive_experiment)
    add("POST", f"{P}/runs", v.create_run)
    add("GET", f"{P}/runs", v.list_runs)
    add("GET", f"{P}/runs/{{run_id}}", v.get_run)
    add("DELETE", f"{P}/runs/{{run_id}}", v.delete_run)
    add("POST", f"{P}/runs/{{run_id}}/terminate", v.terminate_run)
    add("POST", f"{P}/runs/{{run_id}}/retry", v.retry_run)
    add("POST", f"{P}/runs/{{run_id}}:archive", v.archive_run)
    add("POST", f"{P}/runs/{{run_id}}:unarchive", v.unarchive_run)
    add("POST", f"{P}/runs/{{run_id}}:reportMetrics", v.report_metrics)
    add("POST", f"{P}/jobs", v.create_job)
    add("GET", f"{P}/jobs", v.list_jobs)
    add("GET", f"{P}/jobs/{{id}}", v.get_job)
    add("DELETE", f"{P}/jobs/{{id}}", v.delete_recurring)
    add("POST", f"{P}/jobs/{{id}}/enable", v.enable)
    add("POST", f"{P}/jobs/{{id}}/disable", v.disable)
    return v
