from kfp import dsl


@dsl.component(base_image="python:3.11")
def add(a: int, b: int) -> int:
    return a + b


@dsl.pipeline(name="untyped")
def untyped(x, y: int = 2):
    add(a=x, b=y)
