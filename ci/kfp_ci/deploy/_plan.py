"""Deploy one compiled pipeline: look (read-only) to build a plan, then apply it.

The plan is computed with GET requests only, so ``--dry-run`` prints it and changes nothing. Applying
re-checks what it creates: another deploy may have created the pipeline or the version in between (a
409 is then resolved by looking again, never by overwriting).

First version of a new pipeline: KFP's ``/pipelines/upload`` names the first version after the pipeline.
kfp-ci creates the pipeline empty (``POST /apis/v2beta1/pipelines``, no version) and uploads the version
under its configured name; where that endpoint is missing (v1beta1 servers) it uploads, uploads the real
version, then deletes the forced one, so the pipeline ends with exactly the configured versions. When that
first upload fails, the pipeline this deploy created is deleted again: a failed first deploy leaves no
pipeline without a version (if even the delete fails, the error names the pipeline left behind).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfp_ci.client import PipelineVersion
from kfp_ci.deploy._api import Api
from kfp_ci.deploy._report import DeployResult
from kfp_ci.deploy._versioning import hash_from_description
from kfp_ci.errors import Conflict, KfpCiError, NotFound, ServerError

__all__ = ["Target", "apply", "assess"]


@dataclass(slots=True)
class Target:
    """One pipeline to deploy, everything decided before talking to the server."""

    name: str
    package: Path
    spec: dict[str, Any]
    content_hash: str
    version_name: str
    version_description: str
    pipeline_description: str | None = None
    experiment: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Assessment:
    target: Target
    pipeline_id: str | None = None
    version: PipelineVersion | None = None
    steps: list[str] = field(default_factory=list)


def _conflict(target: Target, found: PipelineVersion) -> Conflict:
    recorded = hash_from_description(found.description)
    why = "a different package" if recorded else "a version kfp-ci did not upload"
    return Conflict(
        409,
        f"pipeline '{target.name}' already has version '{target.version_name}' with {why}; "
        "refusing to overwrite it",
        hint="commit your change (or pass --version-name) to deploy under a new version name",
    )


def _check_existing(target: Target, found: PipelineVersion) -> PipelineVersion:
    if hash_from_description(found.description) != target.content_hash:
        raise _conflict(target, found)
    return found


def assess(api: Api, target: Target, namespace: str | None, *, probe_version: bool = True,
           compare_latest: bool = True) -> Assessment:
    """Read-only: what would deploying ``target`` do?

    Without ``probe_version`` the version is not looked up: :func:`apply` uploads optimistically and
    resolves a 409 by looking then (one request fewer for the usual case, a new commit). With
    ``compare_latest`` the pipeline's latest version is looked up first: when it holds the same package (its
    recorded content hash equals ``target.content_hash``) nothing is uploaded and that version is the result.
    """
    result = Assessment(target)
    pipeline_id = api.find_pipeline(target.name, namespace)
    if pipeline_id is None:
        result.steps.append(f"create pipeline '{target.name}'" + (f" in namespace {namespace}" if namespace else ""))
        result.steps.append(f"upload version '{target.version_name}'")
        return result
    result.pipeline_id = pipeline_id
    if compare_latest:
        latest = api.latest_version(pipeline_id)
        if latest is not None and hash_from_description(latest.description) == target.content_hash:
            result.version = latest
            result.steps.append(f"the latest version '{latest.name}' holds the same package: nothing to upload "
                                "(unchanged)")
            return result
    if not probe_version:
        result.steps.append(f"upload version '{target.version_name}' to pipeline '{target.name}' unless there")
        return result
    found = api.find_version(pipeline_id, target.version_name)
    if found is not None:
        result.version = _check_existing(target, found)
        result.steps.append(f"version '{target.version_name}' is already deployed (unchanged)")
    else:
        result.steps.append(f"upload version '{target.version_name}' to pipeline '{target.name}'")
    return result


def apply(
    api: Api,
    found: Assessment,
    namespace: str | None,
    result: DeployResult,
    *,
    log: Callable[[str], None] = lambda _line: None,
) -> PipelineVersion:
    """Make the pipeline and the version exist; fill ``result``. Returns the version."""
    target = found.target
    if found.version is not None:
        result.pipeline_id = found.pipeline_id
        result.version_id = found.version.id
        result.version_name = found.version.name
        result.version_action = "unchanged"
        return found.version
    pipeline_id = found.pipeline_id
    created = False
    if pipeline_id is None:
        pipeline_id, version = _create_pipeline(api, target, namespace, result, log)
        if version is not None:
            result.pipeline_id = pipeline_id
            result.version_id = version.id
            return version
        created = result.pipeline_action == "created"
    result.pipeline_id = pipeline_id
    try:
        version = _upload_version(api, pipeline_id, target, result, log)
    except KfpCiError as exc:
        if created:  # never leave a pipeline without a version behind
            _remove_created(api, pipeline_id, target, exc)
        raise
    result.version_id = version.id
    return version


class FirstDeployError(ServerError):
    """The first version of a pipeline this deploy created failed to upload (exit code of the cause)."""

    def __init__(self, message: str, cause: KfpCiError) -> None:
        super().__init__(message)
        self.exit_code = cause.exit_code


def _remove_created(api: Api, pipeline_id: str, target: Target, cause: KfpCiError) -> None:
    """Delete the pipeline this deploy created when its first version failed; the error says what is left."""
    try:
        api.delete_pipeline(pipeline_id)
    except NotFound:
        pass
    except KfpCiError as exc:
        raise FirstDeployError(
            f"uploading version '{target.version_name}' failed ({cause}) and the pipeline '{target.name}' "
            f"({pipeline_id}) this deploy created, left without a version, could not be removed ({exc}): run the "
            "deploy again (it uploads the version) or delete the pipeline", cause) from None
    raise FirstDeployError(f"uploading version '{target.version_name}' failed ({cause}); removed the pipeline "
                           f"'{target.name}' this deploy had created, so none is left without a version", cause
                           ) from None


def _upload_version(api: Api, pipeline_id: str, target: Target, result: DeployResult,
                    log: Callable[[str], None]) -> PipelineVersion:
    try:
        version = api.upload_version(target.package, pipeline_id, target.version_name, target.version_description)
    except Conflict:
        # A concurrent deploy of the same name got there first: same package is fine, another is not.
        existing = api.find_version(pipeline_id, target.version_name)
        if existing is None:
            raise
        result.version_action = "unchanged"
        return _check_existing(target, existing)
    result.version_action = "uploaded"
    log(f"uploaded version '{target.version_name}' of pipeline '{target.name}'")
    return version


def _create_pipeline(api: Api, target: Target, namespace: str | None, result: DeployResult,
                     log: Callable[[str], None]) -> tuple[str, PipelineVersion | None]:
    try:
        pipeline_id = api.create_empty_pipeline(target.name, target.pipeline_description, namespace)
    except Conflict:  # created concurrently
        existing = api.find_pipeline(target.name, namespace)
        if existing is None:
            raise
        return existing, None
    if pipeline_id is not None:
        result.pipeline_action = "created"
        log(f"created pipeline '{target.name}' ({pipeline_id})")
        return pipeline_id, None
    # No empty-create endpoint: upload (the forced first version is named after the pipeline), upload the
    # real version, delete the forced one.
    try:
        created_id = api.upload_pipeline(target.package, target.name, target.pipeline_description, namespace)
    except Conflict:
        existing = api.find_pipeline(target.name, namespace)
        if existing is None:
            raise
        return existing, None
    result.pipeline_action = "created"
    log(f"created pipeline '{target.name}' ({created_id})")
    forced = None
    for _attempt in range(3):
        forced = api.find_version(created_id, target.name)
        if forced is not None:
            break
        time.sleep(0.2)
    if target.version_name == target.name:
        if forced is None:
            raise NotFound(404, f"pipeline '{target.name}' was created without its first version")
        result.version_action = "uploaded"
        return created_id, forced
    try:
        version = _upload_version(api, created_id, target, result, log)
    except KfpCiError as exc:  # the forced version goes with the pipeline (KFP 1.x deletes its versions)
        _remove_created(api, created_id, target, exc)
        raise
    if forced is not None:
        try:
            api.delete_version(created_id, forced.id)
        except NotFound:
            pass
    return created_id, version
