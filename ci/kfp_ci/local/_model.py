"""Resource logic shared by both API generations: users and namespaces, pipelines, versions, experiments, runs and
recurring runs, with KFP's rules.

The model raises :class:`~kfp_ci.local._http.HttpError`; ``_app`` turns it into the body shape of the imitated
generation.
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
import zlib
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from kfp_ci._yaml import dump_yaml, load_docs
from kfp_ci.local._compat import Compat
from kfp_ci.local._executor import TERMINAL, Executor, set_state
from kfp_ci.local._http import HttpError, bad, not_found
from kfp_ci.local._packages import coerce_params, spec_parameters
from kfp_ci.local._scheduler import cron_error
from kfp_ci.local._store import Record, Store, new_id, now

RBAC_DENIED = "RBAC: access denied"
SYSTEM = "\x00system"  # the server's own calls (scheduler): no profile check


class Model:
    """Operations on the store that both API generations use, with KFP's rules."""

    def __init__(self, store: Store, executor: Executor, compat: Compat, *, multi_user: bool,
                 profiles: Mapping[str, tuple[str, ...]]) -> None:
        self.store = store
        self.executor = executor
        self.compat = compat
        self.multi_user = multi_user
        self.profiles = dict(profiles)
        # package digest -> (IR, platform spec or None): a package is parsed once, whoever asks
        self._specs: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {}
        self._specs_lock = threading.Lock()

    @property
    def default_service_account(self) -> str:
        """KFP's default for runs and recurring runs without one: ``pipeline-runner`` (the API server's
        DEFAULTPIPELINERUNNERSERVICEACCOUNT), ``default-editor`` in multi-user mode (what Kubeflow's multi-user
        manifests set it to: the profile's editor account)."""
        return "default-editor" if self.multi_user else "pipeline-runner"

    def spec_shared(self, record: Record) -> dict[str, Any]:
        """The IR of a version's or run's package, parsed once per content hash; shared: do not change it."""
        return self._parsed(str(record.get("package") or ""))[0]

    def task_details(self, run: Record) -> tuple[int, int, list[dict[str, Any]]]:
        """(pipeline context id, pipeline run context id, tasks) of an executed run, as KFP fills its run details.

        Ids are ML Metadata's (``store.mlmd_ids``, the ids the ML Metadata route answers with). Each task:
        ``task_id``, ``name``, ``state``, ``start``, ``end``, ``error``, ``execution_id``, ``parent_task_id`` (the
        task of the sub-DAG it runs in; '' at the root), ``child_tasks`` (the tasks that depend on it: ``task_id``,
        ``pod_name``), ``inputs`` / ``outputs`` (artifact name -> artifact ids), ``pod_name``, ``state_history``.
        Not executed yet: (0, 0, [])."""
        tasks = run.get("tasks") or []
        if not tasks:
            return 0, 0, []
        run_id = str(run["id"])
        spec = self.spec_shared(run) if run.get("package") else {}
        dags = {"": (spec.get("root") or {}).get("dag") or {}}
        parents: dict[str, str] = {}
        ir_tasks: dict[str, dict[str, Any]] = {}
        pending = [""]
        while pending:  # walk the DAG and its sub-DAGs: which task runs in which
            dag_task = pending.pop()
            for name, task in (dags[dag_task].get("tasks") or {}).items():
                if name in ir_tasks:
                    continue
                ir_tasks[name] = task
                parents[name] = dag_task
                component = (spec.get("components") or {}).get((task.get("componentRef") or {}).get("name", ""), {})
                if component.get("dag"):
                    dags[name] = component["dag"]
                    pending.append(name)
        outputs: dict[str, dict[str, list[str]]] = {}
        output_keys: list[tuple[str, ...]] = []
        for a in self.store.run_artifacts(run_id):
            if a.get("type") or a.get("uri"):
                output_keys.append(("artifact", run_id, str(a.get("task", "")), str(a.get("name", ""))))
        inputs: dict[str, dict[str, tuple[str, ...]]] = {}
        for t in tasks:
            for name, art in (((ir_tasks.get(t["name"]) or {}).get("inputs") or {}).get("artifacts") or {}).items():
                producer = (art or {}).get("taskOutputArtifact") or {}
                if producer.get("producerTask"):
                    key: tuple[str, ...] = ("artifact", run_id, str(producer["producerTask"]),
                                            str(producer.get("outputArtifactKey")))
                    inputs.setdefault(t["name"], {})[name] = key
        keys: list[tuple[str, ...]] = [("pipeline", str(run.get("pipeline_name") or "")), ("context", run_id)]
        keys += [("execution", run_id, str(t["name"])) for t in tasks]
        every = keys + output_keys + [key for named in inputs.values() for key in named.values()]
        by_key = dict(zip(every, self.store.mlmd_ids.ids(every), strict=True))
        for out_key in output_keys:
            outputs.setdefault(out_key[2], {}).setdefault(out_key[3], []).append(str(by_key[out_key]))
        workflow = re.sub(r"[^a-z0-9-]+", "-", str(run.get("pipeline_name") or "run").lower()).strip("-")[:40]
        workflow = f"{workflow or 'run'}-{run_id[:5]}"
        names = {str(t["name"]) for t in tasks}
        task_ids = {n: str(uuid.uuid5(uuid.NAMESPACE_URL, f"kfp-ci:{run_id}/{n}")) for n in names}
        pods = {n: f"{workflow}-system-container-impl-{zlib.crc32(f'{run_id}/{n}'.encode())}" for n in names}
        out = []
        for t in tasks:
            name = str(t["name"])
            history = [{"update_time": t.get("start"), "state": "RUNNING"}] if t.get("start") else []
            if t.get("end") and t.get("state") != "RUNNING":
                history.append({"update_time": t["end"], "state": t.get("state"), "error": t.get("error") or ""})
            dependents = [n for n, task in ir_tasks.items() if name in (task.get("dependentTasks") or [])
                          and n in names]
            parent = parents.get(name, "")
            out.append({
                "task_id": task_ids[name], "name": name, "state": t.get("state"), "start": t.get("start"),
                "end": t.get("end"), "error": t.get("error") or "", "execution_id": by_key[("execution", run_id, name)],
                "parent_task_id": task_ids.get(parent, ""), "pod_name": pods[name],
                "child_tasks": [{"task_id": task_ids[n], "pod_name": pods[n]} for n in dependents],
                "inputs": {k: [str(by_key[v])] for k, v in inputs.get(name, {}).items()},
                "outputs": outputs.get(name, {}), "state_history": history,
            })
        return by_key[keys[0]], by_key[keys[1]], out

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
        return self.store.find("pipeline", name, namespace=ns)

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
        if pipeline.get("default_version_id"):  # a new version becomes the default (KFP 1.x)
            def newest_is_default(p: Record) -> None:
                p.pop("default_version_id", None)
            self.store.update("pipeline", pipeline["id"], newest_is_default)
        return record

    def versions(self, pipeline_id: str) -> list[Record]:
        return self.store.list("version", parent=pipeline_id)

    def latest_version(self, pipeline_id: str) -> Record | None:
        """Newest by creation second, then by insertion order (KFP breaks same-second ties by random UUID)."""
        return self.store.newest("version", pipeline_id)

    def default_version(self, pipeline: Record) -> Record | None:
        """KFP 1.x's default version: the one set with ``POST /pipelines/{id}/default_version/{version}``, until a
        newer version is uploaded (a new version becomes the default); otherwise, and when that version is gone,
        the latest."""
        chosen = pipeline.get("default_version_id")
        if chosen:
            version = self.store.get("version", str(chosen))
            if version is not None and version.get("pipeline_id") == pipeline["id"]:
                return version
        return self.latest_version(pipeline["id"])

    def _parsed(self, digest: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """(IR, platform spec) of the package ``digest``, parsed once per content hash; shared: do not change."""
        cached = self._specs.get(digest)
        if cached is None:
            docs = load_docs(self.store.package(digest) or b"")
            ir = docs[0] if docs and isinstance(docs[0], dict) else {}
            platform = next((d for d in docs[1:] if isinstance(d, dict) and isinstance(d.get("platforms"), dict)
                             and "kubernetes" in d["platforms"]), None)
            cached = (ir, platform)
            with self._specs_lock:
                if len(self._specs) > 256:
                    self._specs.clear()
                self._specs[digest] = cached
        return cached

    def spec_of(self, version: Record) -> dict[str, Any]:
        """The IR (first YAML document) of a version's package, parsed once per content hash (a copy)."""
        return copy.deepcopy(self._parsed(str(version["package"]))[0])

    def api_spec_of(self, version: Record) -> dict[str, Any]:
        """A version's ``pipeline_spec`` as KFP's API answers it: the IR alone, or, when the package has a platform
        spec (a document with ``platforms.kubernetes``), ``{"pipeline_spec": IR, "platform_spec": ...}``
        (KFP's ``YamlStringToPipelineSpecStruct``)."""
        ir, platform = self._parsed(str(version["package"]))
        if platform is None:
            return copy.deepcopy(ir)
        return copy.deepcopy({"pipeline_spec": ir, "platform_spec": platform})

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
        found = self.store.find("experiment", "Default", namespace=ns)
        if found is not None:
            return found
        try:
            return self.create_experiment(name="Default", description="All runs created without specifying an "
                                          "experiment will be grouped here.", ns=ns)
        except HttpError:
            again = self.store.find("experiment", "Default", namespace=ns)
            assert again is not None
            return again

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
            "pipeline_root": pipeline_root, "service_account": service_account or self.default_service_account,
            "pipeline_name": str((spec.get("pipelineInfo") or {}).get("name") or (spec.get("metadata") or {}).get(
                "name") or ""), "recurring_run_id": recurring_run_id, "created_at": t,
            "scheduled_at": scheduled_at or t,
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
            "service_account": service_account or self.default_service_account, "pipeline_root": pipeline_root,
            "created_at": t, "updated_at": t,
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
