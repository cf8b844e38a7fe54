"""The typed results and settings users get from kfp-ci: immutable, comparable, safe to print, picklable.

They are standard-library dataclasses; these tests pin what callers rely on (they replaced the tests of the
hand-written record class the package used before).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle

import pytest

from kfp_ci.client import PipelineVersion, RetryPolicy
from kfp_ci.client._models import PipelineVersionPage
from kfp_ci.config import PipelineConfig, Settings
from kfp_ci.deploy import DeployResult


def _version(spec: dict[str, object] | None = None, name: str = "v1") -> PipelineVersion:
    return PipelineVersion("vid", "pid", name, name, pipeline_spec=spec)


def test_results_are_frozen_and_slotted() -> None:
    version = _version()
    with pytest.raises(dataclasses.FrozenInstanceError):
        version.name = "other"  # type: ignore[misc]
    assert not hasattr(version, "__dict__")
    result = DeployResult(pipeline="p", namespace=None, host="http://h")
    result.run_state = "SUCCEEDED"  # a deploy fills its result in as it goes
    with pytest.raises(AttributeError):
        result.not_a_field = 1  # type: ignore[attr-defined]


def test_equality_and_hash_ignore_the_spec_and_repr_hides_it() -> None:
    assert _version({"root": {}}) == _version({"other": 1})
    assert _version() != _version(name="v2")
    assert len({_version({"a": 1}), _version()}) == 1
    assert "pipeline_spec" not in repr(_version({"root": {"secret-looking": "x"}}))


def test_settings_repr_never_shows_a_secret() -> None:
    settings = Settings(host="https://kf.example.com", password="pa55-word", token="tok-123", cookie="c=cookie-val")
    text = repr(settings)
    assert "kf.example.com" in text
    for secret in ("pa55-word", "tok-123", "cookie-val"):
        assert secret not in text


def test_settings_overrides_replace_only_given_values() -> None:
    base = Settings(host="http://a", namespace="team", timeout=30.0)
    changed = base.with_overrides(host="http://b", namespace=None)
    assert (changed.host, changed.namespace, base.host) == ("http://b", "team", "http://a")
    with pytest.raises(TypeError, match="unknown settings"):
        base.with_overrides(hots="typo")


def test_pages_iterate_and_survive_pickle_and_copy() -> None:
    page = PipelineVersionPage((_version(), _version(name="v2")), "next")
    assert [v.name for v in page] == ["v1", "v2"] and len(page) == 2 and page[1].name == "v2"
    assert page.pipeline_versions[0] == _version()
    assert pickle.loads(pickle.dumps(page)) == page
    assert copy.deepcopy(page) == page


def test_configs_default_factories_are_fresh() -> None:
    one, two = PipelineConfig(source="a.py"), PipelineConfig(source="b.py")
    assert one.parameters == {} and one.parameters is not two.parameters


def test_retry_policy_checks_its_values() -> None:
    assert RetryPolicy.none().attempts == 1
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(attempts=0)


def test_deploy_result_to_json_is_plain_json() -> None:
    result = DeployResult(pipeline="p", namespace="ns", host="http://h", version_name="abc")
    result.plan.append("upload version abc")
    data = json.loads(json.dumps(result.to_json()))
    assert data["pipeline"] == "p" and data["version_name"] == "abc" and data["plan"] == ["upload version abc"]

