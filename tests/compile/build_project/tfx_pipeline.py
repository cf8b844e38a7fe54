"""A TFX-style runner script: build the pipeline, write a PipelineJob JSON to $KFP_CI_OUTPUT.

TFX's ``KubeflowV2DagRunner(output_filename=...)`` writes this shape (``displayName``, ``labels``, ``pipelineSpec``,
``runtimeConfig``); this script makes the same file with the kfp compiler so the test needs no TFX install.
"""

import json
import os
import tempfile

from kfp import compiler, dsl

ROWS = 1000  # the runtime value the runner bakes into runtimeConfig.parameterValues


@dsl.component(base_image="python:3.11")
def train(rows: int, rate: float) -> float:
    return rows * rate


@dsl.pipeline(name="taxi-trainer", description="a TFX-style pipeline")
def taxi(rows: int, rate: float = 0.1) -> float:
    return train(rows=rows, rate=rate).output


def main() -> None:
    output = os.environ.get("KFP_CI_OUTPUT", "build/pipeline.json")
    with tempfile.TemporaryDirectory() as tmp:
        spec_file = os.path.join(tmp, "pipeline.json")
        compiler.Compiler().compile(taxi, spec_file)
        with open(spec_file, encoding="utf-8") as fh:
            spec = json.load(fh)
    job = {
        "displayName": "taxi-trainer",
        "labels": {"tfx_runner": "kubeflow_v2"},
        "pipelineSpec": spec,
        "runtimeConfig": {"gcsOutputDirectory": "gs://bucket/taxi", "parameterValues": {"rows": ROWS}},
    }
    os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
    with open(output, "w", encoding="utf-8") as fh:
        json.dump(job, fh, indent=2, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    main()
