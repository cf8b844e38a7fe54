import time

from kfp import dsl

time.sleep(600)


@dsl.pipeline(name="hang")
def hang() -> None:
    pass
