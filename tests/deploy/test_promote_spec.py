"""The canonical spec: a compiled YAML file and the spec a server returns (JSON) hash the same when equal."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from kfp_ci._yaml import load_docs
from kfp_ci.client import Client
from kfp_ci.deploy._api import Api
from kfp_ci.deploy._spec import comparable, fetch_spec, file_docs, server_docs, spec_hash

PLATFORM = {"platforms": {"kubernetes": {"deploymentSpec": {"executors": {"exec-add": {
    "secretAsEnv": [{"secretName": "db", "keyToEnv": [{"secretKey": "pw", "envVar": "DB_PW"}]}]}}}}}}


def as_struct(value: Any) -> Any:
    """What a protobuf Struct gives back over JSON: numbers are doubles, whole ones printed without '.0'."""
    text = json.dumps(value)
    return json.loads(text, parse_float=lambda s: int(float(s)) if float(s).is_integer() else float(s))


def test_a_compiled_file_and_the_server_copy_of_it_hash_the_same(
    kfp_server: Callable[..., Any], compiled: dict[str, Path]
) -> None:
    package = compiled["add-square"]
    mine = file_docs(load_docs(package.read_text()))
    assert "1.0" in package.read_text()  # a float default: the case a Struct prints as 1
    server = kfp_server(execute=False)
    with Client(server.url) as client:
        version = client.upload_pipeline_version(str(package), "v1",
                                                 pipeline_id=client.create_pipeline("add-square").pipeline_id)
        theirs = fetch_spec(Api(client), version)
    assert spec_hash(theirs) == spec_hash(mine)
    assert spec_hash(server_docs(as_struct(theirs[0]))) == spec_hash(mine)


def test_formatting_and_key_order_do_not_count_content_does(compiled: dict[str, Path]) -> None:
    docs = file_docs(load_docs(compiled["add-square"].read_text()))
    reordered = yaml.safe_load(yaml.safe_dump(dict(reversed(list(docs[0].items()))), sort_keys=True, indent=4))
    assert spec_hash([reordered]) == spec_hash(docs)
    changed = json.loads(json.dumps(docs[0]))
    changed["root"]["inputDefinitions"]["parameters"]["a"]["defaultValue"] = 1.5
    assert spec_hash([changed]) != spec_hash(docs)
    assert spec_hash(file_docs(load_docs(compiled["needs-input"].read_text()))) != spec_hash(docs)


def test_a_platform_spec_is_part_of_the_canonical_spec(compiled: dict[str, Path]) -> None:
    text = compiled["add-square"].read_text() + "---\n" + yaml.safe_dump(PLATFORM)
    mine = file_docs(load_docs(text))
    assert len(mine) == 2
    # KFP v2 returns a package with a platform spec as an envelope; unwrapped it is the same content.
    envelope = as_struct({"pipeline_spec": mine[0], "platform_spec": mine[1]})
    assert spec_hash(server_docs(envelope)) == spec_hash(mine)
    # Another platform spec is other content.
    other = json.loads(json.dumps(PLATFORM).replace("DB_PW", "DB_PASSWORD"))
    assert spec_hash(server_docs({"pipeline_spec": mine[0], "platform_spec": other})) != spec_hash(mine)
    # A server that reports only the pipeline spec is compared on that alone (and the difference is visible).
    left, right = comparable(mine, server_docs(mine[0]))
    assert len(left) == len(right) == 1 and spec_hash(left) == spec_hash(right)
    assert spec_hash(mine) != spec_hash(mine[:1])
