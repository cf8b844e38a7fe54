"""Pure helpers of the server: robfig cron reading, fire times, package formats, coercion of v1 parameters."""

from __future__ import annotations

import io
import tarfile
import zipfile
from datetime import datetime, timezone

import pytest

from kfp_ci.local._http import HttpError
from kfp_ci.local._packages import coerce_params, read_package
from kfp_ci.local._scheduler import cron_error, next_after, parse_cron

PACKAGE = b"pipelineInfo: {name: p}\nroot: {dag: {}}\ndeploymentSpec: {}\n"


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize(("expr", "after", "expected"), [
    ("0 0 2 * * *", "2026-01-01T03:00:00", "2026-01-02T02:00:00"),   # 6 fields: seconds first, daily at 02:00
    ("0 2 * * *", "2026-01-01T03:00:00", "2026-01-01T03:02:00"),     # 5 fields: robfig reads minute 2 of every hour
    ("0 0 9 ? * 1-5", "2026-01-02T10:00:00", "2026-01-05T09:00:00"),  # '?' and day-of-week (Fri -> Mon)
    ("@daily", "2026-01-01T03:00:00", "2026-01-02T00:00:00"),
    ("@every 1h30m", "2026-01-01T03:00:00", "2026-01-01T04:30:00"),
])
def test_cron_fire_times_follow_robfig_v1(expr: str, after: str, expected: str) -> None:
    trigger = {"cron": expr, "origin": _ts(after)}
    assert next_after(trigger, _ts(after)) == _ts(expected)


def test_cron_errors_carry_kfps_message() -> None:
    assert cron_error("0 0 2 * * *") == "" and parse_cron("0 0 2 * * *")[0] == "0 0 2 * * *"
    message = cron_error("0 2 * *")
    assert message.startswith("Schedule cron is not a supported format(https://godoc.org/github.com/robfig/cron)")
    assert "Expected 5 to 6 fields, found 4" in message
    assert cron_error("@every 0s") and cron_error("70 * * * * *")


def test_periodic_fire_times_follow_kfps_controller() -> None:
    # KFP's controller: the first fire is one interval after start_time, then one interval after the last fire
    trigger = {"interval": 3600, "start": _ts("2026-01-01T00:00:00")}
    assert next_after(trigger, _ts("2025-12-31T00:00:00")) == _ts("2026-01-01T01:00:00")
    assert next_after(trigger, _ts("2026-01-01T05:10:00")) == _ts("2026-01-01T06:10:00")


def test_never_firing_crons_are_refused() -> None:
    for expr in ("0 0 0 31 2 *", "0 0 0 30 2 ?", "0 0 0 31 4 *"):
        assert "never fires" in cron_error(expr), expr
    assert cron_error("0 0 0 29 2 *") == ""  # leap days exist


def test_zip_and_tar_gz_packages_are_unpacked() -> None:
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("pipeline.yaml", PACKAGE)
    tarred = io.BytesIO()
    with tarfile.open(fileobj=tarred, mode="w:gz") as tf:
        info = tarfile.TarInfo("pipeline.yaml")
        info.size = len(PACKAGE)
        tf.addfile(info, io.BytesIO(PACKAGE))
    for content in (zipped.getvalue(), tarred.getvalue()):
        raw, spec = read_package(content, "upload.bin")
        assert raw == PACKAGE and spec["pipelineInfo"]["name"] == "p"
    with pytest.raises(HttpError) as bad:
        read_package(b"not a package", "notes.txt")
    assert bad.value.kind == "upload" and "Unexpected pipeline file format" in bad.value.message
    with pytest.raises(HttpError):
        read_package(b"a: [unclosed", "p.yaml")


def test_v1_string_parameters_become_typed() -> None:
    spec = {"root": {"inputDefinitions": {"parameters": {
        "n": {"parameterType": "NUMBER_INTEGER"}, "x": {"parameterType": "NUMBER_DOUBLE"},
        "flag": {"parameterType": "BOOLEAN"}, "items": {"parameterType": "LIST"}, "s": {"parameterType": "STRING"}}}}}
    typed = coerce_params(spec, {"n": "3", "x": "2.5", "flag": "true", "items": "[1, 2]", "s": "hi", "extra": 1})
    assert typed == {"n": 3, "x": 2.5, "flag": True, "items": [1, 2], "s": "hi", "extra": 1}
    with pytest.raises(HttpError):
        coerce_params(spec, {"n": "three"})


def test_access_log_masks_login_codes_state_and_tokens() -> None:
    from kfp_ci.local._outer import _mask_query

    assert _mask_query("code=abc123&state=s-9&rd=%2F") == "code=***&state=***&rd=%2F"
    assert _mask_query("req=qwe&back=x&hmac=zz") == "req=***&back=***&hmac=***"
    assert _mask_query("filter=%7B%7D&decode=1&page_token=") == "filter=%7B%7D&decode=1&page_token="
