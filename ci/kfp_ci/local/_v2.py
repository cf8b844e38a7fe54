"""v2beta1 routes (KFP 2.x): pipelines, versions, experiments, runs, recurring runs."""

from __future__ import annotations

import json
from typing import Any

from kfp_ci._yaml import load_docs
from kfp_ci.local._fields import check_fields, clean, enum, int64, parse_ts, ts
from kfp_ci.local._handlers import Handlers
from kfp_ci.local._http import HttpError, Req, Resp, Router, bad
from kfp_ci.local._http import resp as _resp
from kfp_ci.local._lists import Scope, list_page
from kfp_ci.local._model import Model
from kfp_ci.local._packages import read_package
from kfp_ci.local._store import Record

P = "/apis/v2beta1"
RUN_FIELDS = {"experiment_id", "run_id", "display_name", "storage_state", "description", "pipeline_version_id",
              "pipeline_spec", "pipeline_version_reference", "runtime_config", "service_account", "created_at",
              "scheduled_at", "finished_at", "state", "error", "run_details", "recurring_run_id", "state_history",
              "plugins_input"}
RECURRING_FIELDS = {"recurring_run_id", "display_name", "description", "pipeline_version_id", "pipeline_spec",
                    "pipeline_version_reference", "runtime_config", "service_account", "max_concurrency", "trigger",
                    "mode", "created_at", "updated_at", "status", "error", "no_catchup", "namespace",
                    "experiment_id", "plugins_input"}
EXPERIMENT_FIELDS = {"experiment_id", "display_name", "description", "created_at", "namespace", "storage_state",
                     "last_run_created_at"}
PIPELINE_FIELDS = {"pipeline_id", "name", "display_name", "description", "created_at", "namespace", "error", "tags"}
VERSION_FIELDS = {"pipeline_id", "pipeline_version_id", "name", "display_name", "description", "created_at",
                  "package_url", "code_source_url", "pipeline_spec", "error", "tags"}
MODES = {"MODE_UNSPECIFIED": 0, "ENABLE": 1, "DISABLE": 2}


def _tags(raw: str | None) -> dict[str, str] | None:
    if not raw:
        return None
    try:
        tags = json.loads(raw)
    except ValueError:
        tags = None
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise HttpError(3, f"Invalid input error: tags must be a JSON object of strings, got {raw!r}", kind="upload")
    return {str(k): v for k, v in tags.items()}


def status_of(message: str, code: int = 2) -> dict[str, Any]:
    return {"code": code, "message": message}


class V2(Handlers):
    def __init__(self, model: Model) -> None:
        super().__init__(model)
        self.split = model.compat.split_names
        # <= 2.5: display_name and name are one column
        self._aliases = {} if self.split else {"display_name": "name"}

    # ------------------------------------------------------------------------------------------ render
    def pipeline(self, p: Record) -> dict[str, Any]:
        body = {"pipeline_id": p["id"], "display_name": p["display_name"] if self.split else p["name"],
                "description": p.get("description"), "created_at": ts(p["created_at"]), "namespace": p.get("_ns")}
        if self.split:
            body["name"] = p["name"]
            if self.m.compat.generation == "2.17":
                body["tags"] = p.get("tags") or {}
        return clean(body)

    def version(self, v: Record, *, spec: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "pipeline_id": v["pipeline_id"], "pipeline_version_id": v["id"],
            "display_name": v["display_name"] if self.split else v["name"], "description": v.get("description"),
            "created_at": ts(v["created_at"]), "code_source_url": v.get("code_source_url"),
            "package_url": {"pipeline_url": v.get("package_url")} if v.get("package_url") else None,
        }
        if self.split:
            body["name"] = v["name"]
            body["tags"] = v.get("tags") or {}
        out = clean(body)
        if spec:
            out["pipeline_spec"] = self.m.api_spec_of(v)
        return out

    def experiment(self, e: Record) -> dict[str, Any]:
        return clean({"experiment_id": e["id"], "display_name": e["name"], "description": e.get("description"),
                      "created_at": ts(e["created_at"]), "namespace": e.get("_ns"),
                      "storage_state": e.get("storage_state", "AVAILABLE"),
                      "last_run_created_at": ts(e.get("last_run_created_at"))})

    def run(self, r: Record) -> dict[str, Any]:
        history = []
        for h in r.get("state_history", []):
            entry: dict[str, Any] = {"update_time": ts(h["update_time"]), "state": h["state"]}
            if h.get("error"):
                entry["error"] = status_of(h["error"])
            history.append(entry)
        pipeline_context, run_context, details = self.m.task_details(r)
        tasks = []
        for t in details:
            tasks.append(clean({
                "run_id": r["id"], "task_id": t["task_id"], "display_name": t["name"],
                "create_time": ts(t.get("start")), "start_time": ts(t.get("start")), "end_time": ts(t.get("end")),
                "state": t.get("state"), "execution_id": str(t["execution_id"]),
                "error": status_of(t["error"]) if t.get("error") else None,
                "inputs": {k: {"artifact_ids": ids} for k, ids in t["inputs"].items()},
                "outputs": {k: {"artifact_ids": ids} for k, ids in t["outputs"].items()},
                "parent_task_id": t["parent_task_id"],
                "state_history": [{"update_time": ts(h["update_time"]), "state": h["state"],
                                   "error": status_of(h["error"]) if h.get("error") else None}
                                  for h in t["state_history"]],
                "pod_name": t["pod_name"], "child_tasks": t["child_tasks"],
            }))
        body: dict[str, Any] = {
            "run_id": r["id"], "experiment_id": r.get("experiment_id"), "display_name": r["name"],
            "storage_state": r.get("storage_state", "AVAILABLE"), "description": r.get("description"),
            "runtime_config": {"parameters": r.get("params") or {}, "pipeline_root": r.get("pipeline_root")},
            "service_account": r.get("service_account"), "created_at": ts(r["created_at"]),
            "scheduled_at": ts(r.get("scheduled_at")), "finished_at": ts(r.get("finished_at")),
            "state": r.get("state"), "error": status_of(r["error"]) if r.get("error") else None,
            "recurring_run_id": r.get("recurring_run_id"), "state_history": history,
            "run_details": {"pipeline_context_id": str(pipeline_context or ""),
                            "pipeline_run_context_id": str(run_context or ""), "task_details": tasks},
        }
        if r.get("version_id"):
            body["pipeline_version_reference"] = {"pipeline_id": r.get("pipeline_id"),
                                                  "pipeline_version_id": r["version_id"]}
        out = clean(body)
        params = (r.get("params") or {})
        if params:  # keep falsy parameter values (0, false, "") as given
            out.setdefault("runtime_config", {})["parameters"] = params
        if r.get("inline"):
            content = self.m.store.package(r["package"]) or b""
            out["pipeline_spec"] = next((d for d in load_docs(content) if d), {})
        return out

    def recurring(self, rec: Record) -> dict[str, Any]:
        trig = rec["trigger"]
        window = {"start_time": ts(trig.get("start")), "end_time": ts(trig.get("end"))}
        if trig.get("cron"):
            trigger = {"cron_schedule": {**window, "cron": trig["cron"]}}
        else:
            trigger = {"periodic_schedule": {**window, "interval_second": str(int(trig["interval"]))}}
        ref = None
        if rec.get("pipeline_id") or rec.get("version_id"):
            ref = {"pipeline_id": rec.get("pipeline_id"), "pipeline_version_id": rec.get("version_id")}
        body = {
            "recurring_run_id": rec["id"], "display_name": rec["name"], "description": rec.get("description"),
            "pipeline_version_reference": ref,
            "runtime_config": {"parameters": rec.get("params") or {}, "pipeline_root": rec.get("pipeline_root")},
            "service_account": rec.get("service_account"), "max_concurrency": str(rec["max_concurrency"]),
            "trigger": trigger, "mode": "ENABLE" if rec.get("enabled") else "DISABLE",
            "created_at": ts(rec["created_at"]), "updated_at": ts(rec.get("updated_at")),
            "status": "ENABLED" if rec.get("enabled") else "DISABLED", "no_catchup": rec.get("no_catchup"),
            "namespace": rec.get("_ns"), "experiment_id": rec.get("experiment_id"),
            "error": status_of(rec["error"]) if rec.get("error") else None,
        }
        out = clean(body)
        if rec.get("inline") and rec.get("package"):
            out["pipeline_spec"] = next((d for d in load_docs(self.m.store.package(rec["package"]) or b"")
                                         if d), {})
        return out

    # ----------------------------------------------------------------------------------------- helpers
    def _list(self, kind: str, scope: Scope, req: Req, key: str, render: Any) -> Resp:
        page, total, token = list_page(self.m.store, kind, req.query, op_field="operation", scope=scope)
        return _resp(200, clean({key: [render(r) for r in page], "total_size": total, "next_page_token": token}))

    def _ns_filter(self, req: Req, kind: str, *, required_msg: str | None) -> str | None:
        """Namespace a list is restricted to (None: all, single-user)."""
        if not self.m.multi_user:
            return None
        ns = req.query.get("namespace", "")
        if not ns and required_msg:
            raise bad(required_msg)
        self.m.authorize(req.user, ns)
        return ns

    # ----------------------------------------------------------------------------------------- pipelines
    def list_pipelines(self, req: Req) -> Resp:
        ns = self._ns_filter(req, "pipeline", required_msg=None)
        return self._list("pipeline", Scope(namespace=ns, aliases=self._aliases), req, "pipelines", self.pipeline)

    def get_pipeline(self, req: Req) -> Resp:
        return _resp(200, self.pipeline(self.m.pipeline(req.params["pipeline_id"], req.user)))

    def get_pipeline_by_name(self, req: Req) -> Resp:
        ns = self.m.namespace(req.user, req.query.get("namespace"), required=False, what="")
        p = self.m.pipeline_by_name(req.params["name"], ns)
        if p is None:
            raise HttpError(5, f"Pipeline {req.params['name']} not found in namespace {ns!r}",
                            user_message=f"pipeline {req.params['name']} not found")
        return _resp(200, self.pipeline(p))

    def create_pipeline(self, req: Req) -> Resp:
        body = check_fields(req.json(), PIPELINE_FIELDS, "v2beta1.Pipeline")
        name = str(body.get("name") or body.get("display_name") or "")
        ns = self.m.namespace(req.user, body.get("namespace"), required=False, what="")
        p = self.m.create_pipeline(name=name, display_name=str(body.get("display_name") or name),
                                   description=str(body.get("description") or ""), ns=ns, tags=body.get("tags"))
        return _resp(200, self.pipeline(p))

    def create_pipeline_and_version(self, req: Req) -> Resp:
        body = check_fields(req.json(), {"pipeline", "pipeline_version"}, "v2beta1.CreatePipelineAndVersionRequest")
        pv = check_fields(body.get("pipeline_version") or {}, VERSION_FIELDS, "v2beta1.PipelineVersion")
        url = ((pv.get("package_url") or {}).get("pipeline_url") or "")
        raise bad(f"the embedded server cannot download {url or 'package URLs'}; upload the file with "
                  "/apis/v2beta1/pipelines/upload instead")

    def upload(self, req: Req) -> Resp:
        assert req.upload is not None
        content, filename = req.upload
        q = req.query
        name = q.get("name") or q.get("display_name") or filename
        ns = self.m.namespace(req.user, q.get("namespace"), required=False, what="")
        content, spec = read_package(content, filename)
        tags = _tags(q.get("tags"))
        display = q.get("display_name") or name
        description = q.get("description", "")
        p = self.m.create_pipeline(name=name, display_name=display, description=description, ns=ns, tags=tags,
                                   upload=True)
        try:
            self.m.create_version(p, name=name, display_name=display, description=description, content=content,
                                  spec=spec, upload=True, code_source_url=q.get("code_source_url", ""), tags=tags)
        except HttpError:
            self.m.store.delete("pipeline", p["id"])
            raise
        return _resp(200, self.pipeline(p))

    def upload_version(self, req: Req) -> Resp:
        pipeline, content, spec, filename = self.upload_target(req)
        q = req.query
        name = q.get("name") or q.get("display_name") or filename
        tags = _tags(q.get("tags"))
        v = self.m.create_version(pipeline, name=name, display_name=q.get("display_name") or name,
                                  description=q.get("description", ""), content=content, spec=spec, upload=True,
                                  code_source_url=q.get("code_source_url", ""), tags=tags)
        return _resp(200, self.version(v))

    def create_version(self, req: Req) -> Resp:
        check_fields(req.json(), VERSION_FIELDS, "v2beta1.PipelineVersion")
        raise bad("the embedded server cannot download package URLs; use /apis/v2beta1/pipelines/upload_version")

    def list_versions(self, req: Req) -> Resp:
        p = self.m.pipeline(req.params["pipeline_id"], req.user)
        return self._list("version", Scope(parent=p["id"], aliases=self._aliases), req, "pipeline_versions",
                          self.version)

    def get_version(self, req: Req) -> Resp:
        return _resp(200, self.version(self.m.version(req.params["version_id"], req.user, req.params["pipeline_id"])))

    def delete_version(self, req: Req) -> Resp:
        v = self.m.version(req.params["version_id"], req.user, req.params["pipeline_id"])
        self.m.store.delete("version", v["id"])
        return _resp(200, {})

    def _patch(self, kind: str, record: Record, req: Req, fields: set[str], message: str) -> Record:
        """PATCH (>= 2.17): only ``display_name`` and ``tags`` change; other fields must be absent or unchanged."""
        body = check_fields(req.json(), fields, message)
        tags = body.get("tags")
        if tags is not None and (not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values())):
            raise bad("tags must be an object of strings")

        def change(r: Record) -> None:
            if body.get("display_name"):
                r["display_name"] = str(body["display_name"])
            if tags is not None:
                r["tags"] = dict(tags)
        updated = self.m.store.update(kind, record["id"], change)
        assert updated is not None
        return updated

    def patch_pipeline(self, req: Req) -> Resp:
        p = self.m.pipeline(req.params["pipeline_id"], req.user)
        return _resp(200, self.pipeline(self._patch("pipeline", p, req, PIPELINE_FIELDS | {"pipeline_id"},
                                                    "v2beta1.Pipeline")))

    def patch_version(self, req: Req) -> Resp:
        v = self.m.version(req.params["version_id"], req.user, req.params["pipeline_id"])
        fields = VERSION_FIELDS | {"pipeline_version_id"}
        return _resp(200, self.version(self._patch("version", v, req, fields, "v2beta1.PipelineVersion")))

    def delete_pipeline(self, req: Req) -> Resp:
        p = self.m.pipeline(req.params["pipeline_id"], req.user)
        cascade = req.query.get("cascade", "").lower() == "true"
        self.m.delete_pipeline(p, cascade=cascade)
        return _resp(200, {})

    # --------------------------------------------------------------------------------------- experiments
    def create_experiment(self, req: Req) -> Resp:
        body = check_fields(req.json(), EXPERIMENT_FIELDS, "v2beta1.Experiment")
        ns = self.m.namespace(req.user, body.get("namespace"), required=True,
                              what="An experiment cannot have an empty namespace in multi-user mode")
        e = self.m.create_experiment(name=str(body.get("display_name") or ""),
                                     description=str(body.get("description") or ""), ns=ns)
        return _resp(200, self.experiment(e))

    def list_experiments(self, req: Req) -> Resp:
        ns = self._ns_filter(req, "experiment", required_msg="In multi-user mode, ListExperiment must filter by "
                             "namespace")
        return self._list("experiment", Scope(namespace=ns), req, "experiments", self.experiment)

    def get_experiment(self, req: Req) -> Resp:
        return _resp(200, self.experiment(self.m.experiment(req.params["experiment_id"], req.user)))

    def archive_experiment(self, req: Req) -> Resp:
        e = self.m.experiment(req.params["experiment_id"], req.user)
        self.m.set_storage("experiment", e["id"], "ARCHIVED")
        in_experiment = Scope(experiment_id=e["id"]).where(self.m.store)
        for r in self.m.store.page("run", in_experiment)[0]:
            self.m.set_storage("run", r["id"], "ARCHIVED")
        for rec in self.m.store.page("recurring", in_experiment)[0]:
            self.m.set_enabled(rec["id"], req.user, False)
        return _resp(200, {})

    def unarchive_experiment(self, req: Req) -> Resp:
        e = self.m.experiment(req.params["experiment_id"], req.user)
        self.m.set_storage("experiment", e["id"], "AVAILABLE")
        return _resp(200, {})

    def delete_experiment(self, req: Req) -> Resp:
        e = self.m.experiment(req.params["experiment_id"], req.user)
        self.m.store.delete("experiment", e["id"])
        return _resp(200, {})

    # ---------------------------------------------------------------------------------------------- runs
    def _source(self, body: dict[str, Any]) -> tuple[str, str, dict[str, Any] | None]:
        ref = check_fields(body.get("pipeline_version_reference") or {}, {"pipeline_id", "pipeline_version_id"},
                           "v2beta1.PipelineVersionReference")
        inline = body.get("pipeline_spec")
        if inline is not None and not isinstance(inline, dict):
            raise bad("pipeline_spec must be an object (the compiled IR)")
        if isinstance(inline, dict) and "pipeline_spec" in inline and "root" not in inline:
            inline = inline["pipeline_spec"]
        return (str(ref.get("pipeline_id") or ""),
                str(ref.get("pipeline_version_id") or body.get("pipeline_version_id") or ""), inline or None)

    def _config(self, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        config = check_fields(body.get("runtime_config") or {}, {"parameters", "pipeline_root"},
                              "v2beta1.RuntimeConfig")
        params = config.get("parameters") or {}
        if not isinstance(params, dict):
            raise bad("runtime_config.parameters must be an object")
        return params, str(config.get("pipeline_root") or "")

    def create_run(self, req: Req) -> Resp:
        body = check_fields(req.json(), RUN_FIELDS, "v2beta1.Run")
        pid, vid, inline = self._source(body)
        params, root = self._config(body)
        r = self.m.create_run(
            name=str(body.get("display_name") or ""), description=str(body.get("description") or ""),
            experiment_id=str(body.get("experiment_id") or req.query.get("experiment_id") or ""),
            ns=req.query.get("namespace"), user=req.user, pipeline_id=pid, version_id=vid, inline=inline,
            params=params, pipeline_root=root, service_account=str(body.get("service_account") or ""))
        return _resp(200, self.run(r))

    def get_run(self, req: Req) -> Resp:
        return _resp(200, self.run(self.m.run(req.params["run_id"], req.user)))

    def list_runs(self, req: Req) -> Resp:
        exp = req.query.get("experiment_id", "")
        if exp:
            self.m.experiment(exp, req.user)
            scope = Scope(experiment_id=exp)
        else:
            scope = Scope(namespace=self._ns_filter(req, "run", required_msg="In multi-user mode, ListRuns must "
                                                    "filter by namespace or experiment"))
        return self._list("run", scope, req, "runs", self.run)


    # ------------------------------------------------------------------------------------ recurring runs
    def create_recurring(self, req: Req) -> Resp:
        body = check_fields(req.json(), RECURRING_FIELDS, "v2beta1.RecurringRun")
        pid, vid, inline = self._source(body)
        params, root = self._config(body)
        trig = check_fields(body.get("trigger") or {}, {"cron_schedule", "periodic_schedule"}, "v2beta1.Trigger")
        trigger: dict[str, Any]
        if trig.get("cron_schedule") is not None:
            c = check_fields(trig["cron_schedule"], {"start_time", "end_time", "cron"}, "v2beta1.CronSchedule")
            trigger = {"cron": str(c.get("cron") or ""), "start": parse_ts(c.get("start_time"), "start_time"),
                       "end": parse_ts(c.get("end_time"), "end_time")}
            if not trigger["cron"]:
                raise bad("cron_schedule.cron is empty")
        elif trig.get("periodic_schedule") is not None:
            s = check_fields(trig["periodic_schedule"], {"start_time", "end_time", "interval_second"},
                             "v2beta1.PeriodicSchedule")
            trigger = {"interval": int64(s.get("interval_second") or 0, "interval_second"),
                       "start": parse_ts(s.get("start_time"), "start_time"),
                       "end": parse_ts(s.get("end_time"), "end_time")}
        else:
            trigger = {}
        mode = enum(body.get("mode", "MODE_UNSPECIFIED"), MODES, "mode")
        rec = self.m.create_recurring(
            name=str(body.get("display_name") or ""), description=str(body.get("description") or ""),
            experiment_id=str(body.get("experiment_id") or ""), ns=body.get("namespace"), user=req.user,
            pipeline_id=pid, version_id=vid, inline=inline, params=params, trigger=trigger,
            max_concurrency=int64(body.get("max_concurrency") or 1, "max_concurrency"),
            enabled=mode == "ENABLE", no_catchup=bool(body.get("no_catchup")),
            service_account=str(body.get("service_account") or ""), pipeline_root=root)
        return _resp(200, self.recurring(rec))

    def get_recurring(self, req: Req) -> Resp:
        return _resp(200, self.recurring(self.m.recurring(req.params["id"], req.user)))

    def list_recurring(self, req: Req) -> Resp:
        exp = req.query.get("experiment_id", "")
        if exp:
            self.m.experiment(exp, req.user)
            scope = Scope(experiment_id=exp)
        else:
            scope = Scope(namespace=self._ns_filter(req, "recurring", required_msg="In multi-user mode, "
                                                    "ListRecurringRuns must filter by namespace or experiment"))
        return self._list("recurring", scope, req, "recurringRuns", self.recurring)



def register(router: Router, model: Model) -> V2:
    v = V2(model)
    add = router.add
    add("GET", f"{P}/pipelines", v.list_pipelines)
    add("POST", f"{P}/pipelines", v.create_pipeline)
    add("POST", f"{P}/pipelines/create", v.create_pipeline_and_version)
    add("POST", f"{P}/pipelines/upload", v.upload)
    add("POST", f"{P}/pipelines/upload_version", v.upload_version)
    add("GET", f"{P}/pipelines/names/{{name}}", v.get_pipeline_by_name)
    add("GET", f"{P}/pipelines/{{pipeline_id}}", v.get_pipeline)
    add("DELETE", f"{P}/pipelines/{{pipeline_id}}", v.delete_pipeline)
    add("GET", f"{P}/pipelines/{{pipeline_id}}/versions", v.list_versions)
    add("POST", f"{P}/pipelines/{{pipeline_id}}/versions", v.create_version)
    add("GET", f"{P}/pipelines/{{pipeline_id}}/versions/{{version_id}}", v.get_version)
    add("DELETE", f"{P}/pipelines/{{pipeline_id}}/versions/{{version_id}}", v.delete_version)
    if model.compat.generation == "2.17":
        add("PATCH", f"{P}/pipelines/{{pipeline_id}}", v.patch_pipeline)
        add("PATCH", f"{P}/pipelines/{{pipeline_id}}/versions/{{version_id}}", v.patch_version)
    add("POST", f"{P}/experiments", v.create_experiment)
    add("GET", f"{P}/experiments", v.list_experiments)
    add("GET", f"{P}/experiments/{{experiment_id}}", v.get_experiment)
    add("DELETE", f"{P}/experiments/{{experiment_id}}", v.delete_experiment)
    add("POST", f"{P}/experiments/{{experiment_id}}:archive", v.archive_experiment)
    add("POST", f"{P}/experiments/{{experiment_id}}:unarchive", v.unarchive_experiment)
    add("POST", f"{P}/runs", v.create_run)
    add("GET", f"{P}/runs", v.list_runs)
    add("GET", f"{P}/runs/{{run_id}}", v.get_run)
    add("DELETE", f"{P}/runs/{{run_id}}", v.delete_run)
    add("POST", f"{P}/runs/{{run_id}}:terminate", v.terminate_run)
    add("POST", f"{P}/runs/{{run_id}}:archive", v.archive_run)
    add("POST", f"{P}/runs/{{run_id}}:unarchive", v.unarchive_run)
    add("POST", f"{P}/runs/{{run_id}}:retry", v.retry_run)
    add("POST", f"{P}/recurringruns", v.create_recurring)
    add("GET", f"{P}/recurringruns", v.list_recurring)
    add("GET", f"{P}/recurringruns/{{id}}", v.get_recurring)
    add("DELETE", f"{P}/recurringruns/{{id}}", v.delete_recurring)
    add("POST", f"{P}/recurringruns/{{id}}:enable", v.enable)
    add("POST", f"{P}/recurringruns/{{id}}:disable", v.disable)
    return v
