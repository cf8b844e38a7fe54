"""A kfp 1.8-era pipeline: untyped parameters, positional component calls, create_component_from_func."""

import kfp
from kfp import dsl
from kfp.components import create_component_from_func


def add(a: float, b: float) -> float:
    return a + b


add_op = create_component_from_func(add, base_image="python:3.9")


@dsl.pipeline(name="v1-style", description="kfp 1.8 style")
def v1_style(a=1, b=2):
    first = add_op(a, b)
    add_op(first.output, 3)


if __name__ == "__main__":
    kfp.compiler.Compiler().compile(v1_style, "v1_style.yaml")
