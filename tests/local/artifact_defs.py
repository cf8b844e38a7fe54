"""A pipeline handing an artifact from one task to the next (no ``from __future__ import annotations``: kfp reads
real annotations)."""

from kfp import dsl


@dsl.component(base_image="python:3.11")
def produce(text: str, data: dsl.Output[dsl.Dataset]) -> None:
    with open(data.path, "w") as fh:
        fh.write(text)


@dsl.component(base_image="python:3.11")
def consume(data: dsl.Input[dsl.Dataset]) -> str:
    with open(data.path) as fh:
        return fh.read().upper()


@dsl.pipeline(name="hand-over")
def hand_over(text: str = "hello") -> None:
    consume(data=produce(text=text).outputs["data"])


@dsl.component(base_image="python:3.11")
def explode(path: str) -> None:
    import json

    with open(path) as fh:  # a missing file: FileNotFoundError, printed in colour-free text by Python
        json.load(fh)


@dsl.pipeline(name="explodes")
def explodes(path: str = "no-such-file.json") -> None:
    explode(path=path)
