import sys

from kfp import dsl

sys.exit(4)


@dsl.pipeline(name="exits")
def exits() -> None:
    pass
