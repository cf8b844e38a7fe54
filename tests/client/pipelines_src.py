"""A small pipeline for the client integration tests (no ``from __future__ import annotations``: kfp reads the
annotations at decoration time)."""

from kfp import dsl


@dsl.component(base_image="python:3.11")
def add(a: float, b: float) -> float:
    return a + b


@dsl.pipeline(name="client-it")
def client_it(a: float = 1.0, b: float = 2.0) -> None:
    add(a=a, b=b)
