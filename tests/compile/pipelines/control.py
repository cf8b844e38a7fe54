"""Control flow: dsl.If/Elif/Else, ParallelFor, ExitHandler."""

from kfp import dsl


@dsl.component(base_image="python:3.11")
def flip(seed: int) -> str:
    return "heads" if seed % 2 else "tails"


@dsl.component(base_image="python:3.11")
def say(msg: str) -> None:
    print(msg)


@dsl.pipeline(name="control-flow")
def control_flow(seed: int = 1, names: list = ["a", "b"]) -> None:  # noqa: B006
    cleanup = say(msg="bye")
    with dsl.ExitHandler(cleanup):
        coin = flip(seed=seed)
        with dsl.If(coin.output == "heads"):
            say(msg="heads")
        with dsl.Elif(coin.output == "tails"):
            say(msg="tails")
        with dsl.Else():
            say(msg="edge")
        with dsl.ParallelFor(names, parallelism=2) as name:
            say(msg=name)
