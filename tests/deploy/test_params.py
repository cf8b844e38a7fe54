"""--param values are typed by the pipeline's declared inputs; mistakes are caught before anything runs."""

from __future__ import annotations

from typing import Any

import pytest

from kfp_ci.deploy._params import pipeline_inputs, resolve_parameters
from kfp_ci.errors import UsageError

SPEC: dict[str, Any] = {
    "root": {
        "inputDefinitions": {
            "parameters": {
                "epochs": {"parameterType": "NUMBER_INTEGER", "defaultValue": 3, "isOptional": True},
                "lr": {"parameterType": "NUMBER_DOUBLE", "defaultValue": 0.1, "isOptional": True},
                "name": {"parameterType": "STRING"},
                "debug": {"parameterType": "BOOLEAN", "defaultValue": False, "isOptional": True},
                "layers": {"parameterType": "LIST", "isOptional": True},
                "opts": {"parameterType": "STRUCT", "isOptional": True},
            }
        }
    }
}


def test_values_are_typed_by_declared_inputs() -> None:
    inputs = pipeline_inputs(SPEC)
    got = resolve_parameters(
        inputs,
        [("epochs", "5"), ("lr", "1e-3"), ("name", "x"), ("debug", "true"), ("layers", "[1, 2]"),
         ("opts", '{"a": 1}')],
    )
    assert got == {"epochs": 5, "lr": 0.001, "name": "x", "debug": True, "layers": [1, 2], "opts": {"a": 1}}
    assert isinstance(got["epochs"], int) and isinstance(got["lr"], float)


def test_config_defaults_are_overridden_by_cli() -> None:
    inputs = pipeline_inputs(SPEC)
    got = resolve_parameters(inputs, [("epochs", "9")], {"epochs": 4, "name": "cfg", "lr": 1})
    assert got == {"epochs": 9, "name": "cfg", "lr": 1.0}


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([("name", "x"), ("epoch", "3")], "has no input 'epoch' (inputs: debug, epochs, layers, lr, name, opts)"),
        ([("name", "x"), ("epochs", "three")], "--param epochs='three': expected an integer"),
        ([("name", "x"), ("lr", "nan")], "expected a number"),
        ([("name", "x"), ("debug", "maybe")], "expected true or false"),
        ([("name", "x"), ("layers", "1,2")], "expected a JSON list"),
        ([("name", "x"), ("opts", "[1]")], "expected a JSON object"),
        ([], "needs a value for required input(s) name: add --param name=..."),
        ([("name", "a"), ("name", "b")], "given twice"),
    ],
)
def test_parameter_mistakes_are_usage_errors(pairs: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(UsageError) as info:
        resolve_parameters(pipeline_inputs(SPEC), pairs, pipeline="pipeline 'train'")
    assert message in str(info.value)


def test_config_values_of_the_wrong_type_are_reported() -> None:
    with pytest.raises(UsageError, match=r"\[tool.kfp-ci\] parameter epochs='3': expected an integer"):
        resolve_parameters(pipeline_inputs(SPEC), [("name", "x")], {"epochs": "3"})
    with pytest.raises(UsageError, match="has no input 'nope'"):
        resolve_parameters(pipeline_inputs(SPEC), [("name", "x")], {"nope": 1})


def test_pipeline_without_inputs() -> None:
    assert resolve_parameters(pipeline_inputs({"root": {"dag": {}}}), []) == {}
    with pytest.raises(UsageError, match=r"inputs: none"):
        resolve_parameters(pipeline_inputs({}), [("a", "1")])
