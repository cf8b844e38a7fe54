"""Small real kfp pipelines the deploy tests compile (the real compiler, lightweight components)."""

from kfp import dsl


@dsl.component(base_image="python:3.11")
def add(a: float, b: float) -> float:
    return a + b


@dsl.component(base_image="python:3.11")
def square(x: float) -> float:
    return x * x


@dsl.component(base_image="python:3.11")
def explode(x: float) -> float:
    raise RuntimeError(f"boom at {x}")


@dsl.pipeline(name="add-square", description="a + b, squared")
def add_square(a: float = 1.0, b: float = 2.0, label: str = "ci") -> float:
    first = add(a=a, b=b)
    return square(x=first.output).output


@dsl.pipeline(name="needs-input")
def needs_input(epochs: int, rate: float = 0.1, debug: bool = False) -> float:
    return add(a=rate, b=1.0).output


@dsl.pipeline(name="always-fails")
def always_fails(x: float = 1.0) -> float:
    return explode(x=add(a=x, b=1.0).output).output
