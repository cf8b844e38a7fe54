import os

from kfp import dsl

os._exit(3)


@dsl.pipeline(name="crash")
def crash() -> None:
    pass
