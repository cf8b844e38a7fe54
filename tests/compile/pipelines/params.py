"""Every pipeline parameter type, and artifacts passed between components."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

BASE = "python:3.11"


@dsl.component(base_image=BASE)
def echo(i: int, f: float, s: str, b: bool, items: list, mapping: dict) -> str:
    return f"{i} {f} {s} {b} {items} {mapping}"


@dsl.component(base_image=BASE)
def make_data(rows: int, data: Output[Dataset]) -> None:
    with open(data.path, "w") as fh:
        fh.write("x\n" * rows)


@dsl.component(base_image=BASE)
def train(data: Input[Dataset], model: Output[Model], metrics: Output[Metrics]) -> float:
    metrics.log_metric("rows", 1.0)
    with open(model.path, "w") as fh:
        fh.write("model")
    return 0.5


@dsl.pipeline(name="all-params", description="every parameter type")
def all_params(
    i: int = 3,
    f: float = 1.5,
    s: str = "text",
    b: bool = True,
    items: list = [1, 2],  # noqa: B006
    mapping: dict = {"k": "v"},  # noqa: B006
    no_default: str = "",
) -> None:
    echo(i=i, f=f, s=s, b=b, items=items, mapping=mapping)


@dsl.pipeline(name="artifacts")
def artifacts(rows: int = 10) -> None:
    data = make_data(rows=rows)
    train(data=data.outputs["data"])
