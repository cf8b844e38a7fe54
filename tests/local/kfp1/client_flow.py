"""Run by the kfp 1.8 venv's Python: the kfp 1.x client's v1beta1 flow against HOST. Prints one JSON line.

Usage: python client_flow.py HOST WORKDIR
"""

import json
import sys

import kfp
from kfp import compiler
from kfp.components import create_component_from_func


def add(a: float, b: float) -> float:
    return a + b


def main(host, workdir):
    add_op = create_component_from_func(add, base_image="python:3.10")

    @kfp.dsl.pipeline(name="v1-add")
    def pipeline(a: float = 1.0, b: float = 2.0):
        add_op(a, b)

    package = workdir + "/v1-add.yaml"
    compiler.Compiler().compile(pipeline, package)
    client = kfp.Client(host=host)
    out = {"healthz_multi_user": client.get_kfp_healthz().multi_user}
    pipe = client.upload_pipeline(package, pipeline_name="v1-add", description="kfp 1.8 upload")
    out["pipeline_id"] = pipe.id
    out["default_version"] = pipe.default_version.name
    version = client.upload_pipeline_version(package, "v2", pipeline_id=pipe.id)
    out["version_names"] = sorted(v.name for v in client.list_pipeline_versions(pipe.id).versions)
    out["found_id"] = client.get_pipeline_id("v1-add")
    experiment = client.create_experiment("ci-v1")
    out["same_experiment"] = client.create_experiment("ci-v1").id == experiment.id
    run = client.run_pipeline(experiment.id, "v1-run", version_id=version.id, params={"a": 3, "b": 4})
    done = client.wait_for_run_completion(run.id, timeout=60)
    out["run_status"] = done.run.status
    out["run_params"] = {p.name: p.value for p in done.run.pipeline_spec.parameters}
    job = client.create_recurring_run(experiment.id, "v1-nightly", cron_expression="0 0 2 * * *",
                                      version_id=version.id, max_concurrency=1, no_catchup=True)
    out["job_enabled"] = client.get_recurring_run(job.id).enabled
    client.disable_job(job.id)
    out["job_enabled_after_disable"] = bool(client.get_recurring_run(job.id).enabled)
    out["jobs"] = [j.name for j in client.list_recurring_runs().jobs]
    client.delete_job(job.id)
    out["jobs_after_delete"] = client.list_recurring_runs().jobs
    out["runs"] = [r.name for r in client.list_runs().runs]
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
