"""The swagger validator the server and client tests rely on must be able to fail."""

from __future__ import annotations

import pytest
from kfp_api_spec import SPEC_NAMES, SpecError, SpecValidator


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_every_spec_loads_and_matches_healthz(name: str) -> None:
    spec = SpecValidator(name)
    api = name.split("-")[0]
    assert spec.operation("GET", f"/apis/{api}/healthz").template == f"/apis/{api}/healthz"


def test_literal_paths_win_over_templates_and_prefix_is_ignored() -> None:
    spec = SpecValidator("v2beta1-2.17.0")
    assert spec.operation("POST", "/pipeline/apis/v2beta1/pipelines/upload").template.endswith("/upload")
    op = spec.operation("POST", "/apis/v2beta1/runs/r-1:terminate")
    assert op.path_params == {"run_id": "r-1"}


def test_response_with_unknown_field_or_bad_types_fails() -> None:
    spec = SpecValidator("v2beta1-2.17.0")
    spec.validate_response("GET", "/apis/v2beta1/pipelines", 200, {"pipelines": [{"pipeline_id": "p", "name": "n"}]})
    with pytest.raises(SpecError, match="'bogus' was unexpected"):
        spec.validate_response("GET", "/apis/v2beta1/pipelines", 200, {"pipelines": [{"bogus": 1}]})
    with pytest.raises(SpecError, match="is not a 'date-time'"):
        spec.validate_response("GET", "/apis/v2beta1/pipelines/p", 200, {"created_at": "yesterday"})
    with pytest.raises(SpecError, match="is not of type 'string'"):
        spec.validate_response("GET", "/apis/v2beta1/recurringruns/r", 200, {"max_concurrency": 1})


def test_request_query_and_body_are_checked() -> None:
    spec = SpecValidator("v2beta1-2.17.0")
    spec.validate_request("POST", "/apis/v2beta1/pipelines/upload", {"name": "p"}, form_fields=["uploadfile"])
    with pytest.raises(SpecError, match="missing form field 'uploadfile'"):
        spec.validate_request("POST", "/apis/v2beta1/pipelines/upload", {"name": "p"})
    with pytest.raises(SpecError, match="undeclared query parameter 'pagesize'"):
        spec.validate_request("GET", "/apis/v2beta1/pipelines", {"pagesize": "3"})
    with pytest.raises(SpecError, match="must be an integer"):
        spec.validate_request("GET", "/apis/v2beta1/pipelines", {"page_size": "many"})
    with pytest.raises(SpecError, match="'color' was unexpected"):
        spec.validate_request("POST", "/apis/v2beta1/experiments", body={"display_name": "e", "color": "red"})
    with pytest.raises(SpecError, match="no operation"):
        spec.validate_request("POST", "/apis/v2beta1/nothing")


def test_v1_spec_knows_v1_shapes() -> None:
    spec = SpecValidator("v1beta1-1.8.5")
    spec.validate_response("GET", "/apis/v1beta1/runs/r1", 200, {"run": {"id": "r1", "status": "Succeeded"}})
    assert spec.operation("POST", "/apis/v1beta1/runs/r1/terminate").template.endswith("/terminate")
