"""Deploy compiled pipelines to KFP: versions, runs, exactly one recurring run (``kfp-ci deploy`` and friends).

Inside, from the bottom up: :mod:`._versioning` (version names from git, content hashes), :mod:`._params` (run
parameters typed by the pipeline's inputs), :mod:`._cron` (cron and interval schedules), :mod:`._api` (the few KFP
operations deploy needs, over :class:`kfp_ci.client.Client`), :mod:`._plan` (look, then apply: pipeline and
version), :mod:`._schedule` (the recurring-run swap), :mod:`._report` (summary, JSON, step outputs, job summary),
:mod:`._pipeline_diff` (what changed between two compiled pipelines, for a PR), :mod:`._pr_plan` (``kfp-ci
plan``: what merging a PR would deploy, per pipeline and target), :mod:`._deploy` (the library
entry points) and :mod:`._commands` (``deploy``, ``run``, ``schedule``, ``wait``, ``status``); for environments,
:mod:`._spec` (the canonical spec a server keeps), :mod:`._promote` (``promote``) and :mod:`._drift`
(``status --env all``).

Library use::

    from kfp_ci.client import Client
    from kfp_ci.deploy import deploy

    result = deploy(Client("http://127.0.0.1:8888"), "pipeline.yaml", run=True, wait=True)
    print(result.version_name, result.run_state)
"""

from __future__ import annotations

from kfp_ci.deploy._commands import deploy_command, run_command, schedule_command, status_command, wait_command
from kfp_ci.deploy._deploy import DeployOptions, deploy, load_target, wait_for_run
from kfp_ci.deploy._drift import drift_command
from kfp_ci.deploy._pr_plan import PLAN_MARKER, PipelinePlan, plan_command, plan_markdown, plan_pipelines
from kfp_ci.deploy._promote import promote_command
from kfp_ci.deploy._report import DeployResult

__all__ = [
    "PLAN_MARKER",
    "DeployOptions",
    "DeployResult",
    "PipelinePlan",
    "deploy",
    "deploy_command",
    "drift_command",
    "load_target",
    "plan_command",
    "plan_markdown",
    "plan_pipelines",
    "promote_command",
    "run_command",
    "schedule_command",
    "status_command",
    "wait_command",
    "wait_for_run",
]
