"""Run by the kfp 1.8 venv's Python: kfp 1.8 pipelines compiled to Argo, run on HOST with the kfp 1.8 client.

Usage: python argo_flow.py HOST WORKDIR NAME...  Prints one JSON line: {name: {status, error, run_id, nodes}}.
       python argo_flow.py compile WORKDIR NAME...  Only compiles, to WORKDIR/NAME.yaml.
Pipelines: ``cond-loop`` (an exit handler, a condition, a loop over static items, an artifact, a ContainerOp
whose command runs on the host), ``fails`` (a component that raises), ``unrunnable`` (what the host cannot do),
``sleepy`` (a task that sleeps, to be terminated), ``fan-out`` (a loop over a task's output list),
``data-passing`` (a folder artifact, nested loops over a pipeline parameter, a YAML component given a parameter
as a file).
"""

import json
import sys
import time
from typing import NamedTuple

import kfp
from kfp import compiler, components, dsl
from kfp.components import InputPath, OutputPath, create_component_from_func


def produce(n: int, rows_path: OutputPath(str)) -> NamedTuple("Outputs", [("total", int), ("size", str)]):
    with open(rows_path, "w") as f:
        f.write("\n".join(f"row-{i}" for i in range(n)))
    return (n * 10, "big" if n > 2 else "small")


def consume(rows_path: InputPath(str), item: str, mlpipeline_metrics_path: OutputPath("Metrics")) -> str:
    import json
    rows = open(rows_path).read().splitlines()
    json.dump({"metrics": [{"name": "rows-" + item, "numberValue": len(rows)}]}, open(mlpipeline_metrics_path, "w"))
    return f"{item}:{len(rows)}"


def explode(reason: str):
    raise ValueError("the model diverged: " + reason)


def nap(seconds: float):
    import time
    time.sleep(seconds)


def shards(n: int) -> list:
    return [{"index": i, "label": f"shard-{i}"} for i in range(n)]


def report(index: int, label: str) -> str:
    return f"{label}={index * index}"


def make_dir(out_dir_path: OutputPath()):
    import os
    os.makedirs(out_dir_path, exist_ok=True)
    for i in range(4):
        with open(os.path.join(out_dir_path, f"part-{i}.txt"), "w") as f:
            f.write(str(i))


def count_files(folder_path: InputPath()) -> int:
    import os
    return len(os.listdir(folder_path))


def pair(outer: str, inner: str) -> str:
    return f"{outer}/{inner}"


def goodbye(status: str):
    print("pipeline finished:", status)


produce_op = create_component_from_func(produce, base_image="python:3.9")
consume_op = create_component_from_func(consume, base_image="python:3.9")
explode_op = create_component_from_func(explode, base_image="python:3.9")
goodbye_op = create_component_from_func(goodbye, base_image="python:3.9")
nap_op = create_component_from_func(nap, base_image="python:3.9")
shards_op = create_component_from_func(shards, base_image="python:3.9")
report_op = create_component_from_func(report, base_image="python:3.9")
make_dir_op = create_component_from_func(make_dir, base_image="python:3.9")
count_files_op = create_component_from_func(count_files, base_image="python:3.9")
pair_op = create_component_from_func(pair, base_image="python:3.9")
copy_op = components.load_component_from_text("""
name: Copy
inputs: [{name: text, type: String}]
outputs: [{name: copy, type: String}]
implementation:
  container:
    image: alpine
    command: [sh, -c, 'mkdir -p "$(dirname "$1")" && cp "$0" "$1"', {inputPath: text}, {outputPath: copy}]
""")


@dsl.pipeline(name="cond-loop")
def cond_loop(n: int = 3):
    bye = goodbye_op("{{workflow.status}}")
    with dsl.ExitHandler(bye):
        p = produce_op(n)
        with dsl.Condition(p.outputs["size"] == "big"):
            with dsl.ParallelFor(["a", "b", "c"]) as item:
                consume_op(p.outputs["rows"], item)
        with dsl.Condition(p.outputs["total"] < 5):
            explode_op("never: the condition is false")
        count = dsl.ContainerOp(name="count-rows", image="busybox",
                                command=["sh", "-c", "printf '%s\\n' \"$0\" | wc -l | tr -d ' ' > /tmp/count.txt",
                                         p.outputs["rows"]],
                                file_outputs={"count": "/tmp/count.txt"})
        count.after(p)


@dsl.pipeline(name="fails")
def fails(reason: str = "loss is NaN"):
    with dsl.ExitHandler(goodbye_op(f"{{{{workflow.status}}}} ({reason})")):
        p = produce_op(1)
        e = explode_op(reason)
        e.after(p)
        after = produce_op(2)
        after.after(e)


@dsl.pipeline(name="unrunnable")
def unrunnable():
    dsl.ContainerOp(name="mounts", image="busybox", command=["ls", "/data"],
                    pvolumes={"/data": dsl.PipelineVolume(pvc="my-claim")})
    dsl.ContainerOp(name="entrypoint", image="my-registry/trainer:1")
    dsl.ContainerOp(name="image-tool", image="google/cloud-sdk", command=["gsutil-not-on-this-host", "ls"])
    produce_op(1).set_gpu_limit(1)
    dsl.ContainerOp(name="with-sidecar", image="busybox", command=["true"],
                    sidecars=[dsl.Sidecar("cache", "redis")])
    needs_op = create_component_from_func(goodbye, packages_to_install=["kfp-ci-no-such-package"])
    needs_op("-")


@dsl.pipeline(name="sleepy")
def sleepy(seconds: float = 60.0):
    nap_op(seconds)


@dsl.pipeline(name="fan-out")
def fan_out(n: int = 3):
    with dsl.ParallelFor(shards_op(n).output) as shard:
        report_op(shard.index, shard.label)


@dsl.pipeline(name="data-passing")
def data_passing(outers: list = ["o1", "o2"], word: str = "pipeline parameter as a file"):  # noqa: B006
    folder = make_dir_op()
    count_files_op(folder.output)
    with dsl.ParallelFor(outers) as outer:
        with dsl.ParallelFor(["i1", "i2"]) as inner:
            pair_op(outer, inner)
    copy_op(word)  # a pipeline parameter passed to an inputPath: a raw artifact


PIPELINES = {"cond-loop": (cond_loop, {"n": 3}), "fails": (fails, {}), "unrunnable": (unrunnable, {}),
             "sleepy": (sleepy, {}), "fan-out": (fan_out, {"n": 3}),
             "data-passing": (data_passing, {"outers": '["x", "y", "z"]'})}


def wait(client, run_id, timeout=120):
    """kfp.Client.wait_for_run_completion's loop, polling every 0.1 s instead of 5 s."""
    deadline = time.monotonic() + timeout
    while True:
        detail = client.get_run(run_id)
        if (detail.run.status or "").lower() in ("succeeded", "failed", "skipped", "error"):
            return detail
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} is still {detail.run.status}")
        time.sleep(0.1)


def main(host, workdir, names):
    client = kfp.Client(host=host)
    experiment = client.create_experiment("argo")
    out = {}
    for name in names:
        func, params = PIPELINES[name]
        package = f"{workdir}/{name}.yaml"
        compiler.Compiler().compile(func, package)
        pipe = client.upload_pipeline(package, pipeline_name=name)
        run = client.run_pipeline(experiment.id, name + "-run", pipeline_id=pipe.id, params=params)
        detail = wait(client, run.id)
        manifest = json.loads(detail.pipeline_runtime.workflow_manifest or "{}")
        metrics = [{"name": m.name, "node_id": m.node_id, "number_value": m.number_value}
                   for m in detail.run.metrics or []]
        out[name] = {"status": detail.run.status, "error": detail.run.error, "run_id": run.id, "metrics": metrics,
                     "nodes": (manifest.get("status") or {}).get("nodes") or {}}
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "compile":
        for name in sys.argv[3:]:
            compiler.Compiler().compile(PIPELINES[name][0], f"{sys.argv[2]}/{name}.yaml")
    else:
        main(sys.argv[1], sys.argv[2], sys.argv[3:])
