"""Pipelines for the server tests (no ``from __future__ import annotations``: kfp reads real annotations)."""

from kfp import dsl


@dsl.component(base_image="python:3.11")
def add(a: float, b: float) -> float:
    return a + b


@dsl.component(base_image="python:3.11")
def square(x: float) -> float:
    return x * x


@dsl.pipeline(name="add-square")
def add_square(a: float = 1.0, b: float = 2.0) -> None:
    square(x=add(a=a, b=b).output)


@dsl.component(base_image="python:3.11")
def fail(message: str) -> None:
    raise RuntimeError(message)


@dsl.pipeline(name="always-fails")
def always_fails(message: str = "boom") -> None:
    fail(message=message)


@dsl.component(base_image="python:3.11")
def sleep(seconds: float) -> None:
    import time

    time.sleep(seconds)


@dsl.pipeline(name="slow")
def slow(seconds: float = 60.0) -> None:
    sleep(seconds=seconds)


@dsl.container_component
def echo() -> dsl.ContainerSpec:
    return dsl.ContainerSpec(image="alpine", command=["echo", "hi"])


@dsl.pipeline(name="container")
def container() -> None:
    echo()


@dsl.component(base_image="python:3.11")
def evaluate(r2: float, scores: dsl.Output[dsl.Metrics]) -> float:
    scores.log_metric("r2", r2)
    return r2 * 2


@dsl.pipeline(name="metrics")
def metrics(r2: float = 0.9) -> None:
    evaluate(r2=r2)


@dsl.pipeline(name="square")
def square_named_like_its_component(value: float = 3.0) -> None:
    """A pipeline sharing its name with a component (``comp-square``): real KFP runs it, so must we."""
    square(x=value)


@dsl.component(base_image="python:3.11")
def fail_once(marker: str) -> str:
    """Fails the first time (leaving ``marker``), succeeds afterwards: a flaky step worth a retry."""
    import os

    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("transient failure")
    return "recovered"


@dsl.pipeline(name="fails-once")
def fails_once(marker: str = "/nonexistent/marker") -> None:
    fail_once(marker=marker)
