"""A pipeline used as a step of another pipeline; its component comes from a YAML file."""

import os

from kfp import components, dsl

HERE = os.path.dirname(os.path.abspath(__file__))
shout = components.load_component_from_file(os.path.join(HERE, "shout.yaml"))


@dsl.component(base_image="python:3.11")
def add(a: int, b: int) -> int:
    return a + b


@dsl.pipeline(name="inner")
def inner(a: int = 1) -> int:
    return add(a=a, b=2).output


@dsl.pipeline(name="outer")
def outer(a: int = 5) -> None:
    total = inner(a=a)
    shout(text="done", times=total.output)
