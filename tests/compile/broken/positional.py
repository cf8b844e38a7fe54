from kfp import dsl


@dsl.component(base_image="python:3.11")
def add(a: int, b: int) -> int:
    return a + b


def build(x: int) -> None:
    add(x, 1)


@dsl.pipeline(name="positional")
def positional(x: int = 1) -> None:
    build(x)
