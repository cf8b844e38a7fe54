"""Keep exactly one enabled kfp-ci-owned recurring run per pipeline (continuous training).

A recurring run is *owned* when its description carries the marker ``kfp-ci:pipeline=<pipeline id>``; it also
records a fingerprint of what it runs (version or "latest", trigger, parameters, experiment), so a deploy that
asks for what is already running changes nothing.

KFP cannot update a recurring run, so a change is a swap, ordered so that a recurring run is enabled at every
moment (a brief overlap of two is possible, a gap of none is not):

1. create the new one **disabled**;
2. enable the new one (the old one is still enabled: for a moment both are);
3. disable the old enabled one(s);
4. delete the old one(s) (``keep_old`` keeps them, disabled).

Failures: if step 1 or 2 fails, the old one stays the enabled one and the new one is removed; if step 3 fails,
the new one is disabled again (rolled back) so the old one stays the only enabled one, and if that fails too the
error names both runs and which one to disable; a failed step 4 only warns (the next deploy removes stale ones).
Every failure is one error line saying which recurring run is enabled now.

Convergence: any interruption leaves a state the next deploy repairs (a newest run with the same fingerprint is
reused, enabled or not; stale ones are disabled and deleted). Concurrency: the newest owned run (by the creation
stamp in its marker, then id) wins. A deploy that finds a newer owned run than its own, before or after enabling,
steps back (disables and deletes its own); the winner disables every other enabled one after enabling itself.
Whatever the interleaving, the last deploy to finish leaves one enabled recurring run and nobody fails.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kfp_ci.deploy._cron import Schedule
from kfp_ci.errors import KfpCiError, NotFound, ServerError

__all__ = ["Owned", "RecurringApi", "ScheduleOutcome", "ScheduleSwapError", "ensure_recurring_run", "fingerprint"]

_MARKER_RE = re.compile(r"kfp-ci:pipeline=(?P<pid>[^\s;]+)(?:;\s*spec=(?P<spec>[0-9a-f]+))?(?:;\s*t=(?P<t>\d+))?")


@dataclass(frozen=True, slots=True)
class Owned:
    """A recurring run as this module sees it."""

    id: str
    name: str
    enabled: bool
    created: str
    """Sortable creation stamp (the marker's ns clock, zero-padded)."""
    pipeline_id: str | None
    spec: str | None

    @property
    def order(self) -> tuple[str, str]:
        return (self.created, self.id)


class RecurringApi(Protocol):
    """What the swap needs from the server (implemented over :class:`kfp_ci.client.Client`)."""

    def list_owned(self, pipeline_id: str) -> list[Owned]: ...

    def create(self, *, name: str, description: str, enabled: bool) -> Owned: ...

    def enable(self, recurring_run_id: str) -> None: ...

    def disable(self, recurring_run_id: str) -> None: ...

    def delete(self, recurring_run_id: str) -> None: ...


@dataclass(slots=True)
class ScheduleOutcome:
    action: str
    """unchanged | created | swapped | superseded | would create | would swap"""
    recurring_run_id: str | None
    steps: list[str] = field(default_factory=list)


def fingerprint(
    *,
    pipeline_id: str,
    version_id: str | None,
    schedule: Schedule,
    parameters: Mapping[str, Any],
    experiment_id: str | None,
) -> str:
    """A short hash of everything a recurring run does; equal fingerprints mean nothing to change."""
    body = json.dumps(
        {"p": pipeline_id, "v": version_id or "latest", "t": schedule.trigger(), "params": dict(parameters),
         "e": experiment_id},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def marker(pipeline_id: str, spec: str, stamp: int | None = None) -> str:
    """The ownership marker. ``t`` is the creator's clock in ns: KFP's ``created_at`` has 1 s resolution,
    too coarse to order two recurring runs created in the same second."""
    return f"kfp-ci:pipeline={pipeline_id}; spec={spec}; t={time.time_ns() if stamp is None else stamp:020d}"


def parse_marker(description: str | None) -> tuple[str | None, str | None, str | None]:
    """``(pipeline id, spec fingerprint, creation stamp)`` from a description, ``None`` where absent."""
    match = _MARKER_RE.search(description or "")
    if not match:
        return None, None, None
    return match.group("pid"), match.group("spec"), match.group("t")


def _quiet(action: Callable[[str], None], recurring_run_id: str) -> None:
    """Disable/delete tolerating a concurrent deploy that already removed the run."""
    try:
        action(recurring_run_id)
    except NotFound:
        pass


def ensure_recurring_run(
    api: RecurringApi,
    *,
    pipeline_id: str,
    name: str,
    description: str,
    spec: str,
    keep_old: bool = False,
    dry_run: bool = False,
    log: Callable[[str], None] = lambda _line: None,
) -> ScheduleOutcome:
    """Converge to one enabled owned recurring run whose fingerprint is ``spec``."""
    owned = sorted(api.list_owned(pipeline_id), key=lambda r: r.order)
    enabled = [r for r in owned if r.enabled]
    newest = owned[-1] if owned else None
    if newest is not None and newest.spec == spec and newest.enabled and len(enabled) == 1:
        stale = [] if keep_old else [r for r in owned if r.id != newest.id]
        kept = [f"keep recurring run {newest.id} (unchanged)"] + [f"delete stale disabled {r.id}" for r in stale]
        if not dry_run:
            for run in stale:
                _quiet(api.delete, run.id)
        return ScheduleOutcome("unchanged", newest.id, kept)
    if dry_run:
        verb = "would swap" if enabled else "would create"
        plan = ["create the recurring run disabled", "enable the new recurring run"]
        plan += [f"disable {r.id}" for r in enabled]
        if not keep_old:
            plan += [f"delete {r.id}" for r in owned]
        return ScheduleOutcome(verb, None, plan)
    steps: list[str] = []
    if newest is not None and newest.spec == spec:
        mine = newest  # left by an interrupted deploy (disabled, or enabled next to the old one): finish its swap
        steps.append(f"reuse recurring run {mine.id} left by an interrupted deploy")
    else:
        mine = api.create(name=name, description=f"{description}\n{marker(pipeline_id, spec)}", enabled=False)
        steps.append(f"created recurring run {mine.id} (disabled)")
        log(f"created recurring run {mine.id} (disabled)")
    return _swap(api, mine, pipeline_id=pipeline_id, keep_old=keep_old, had_enabled=bool(enabled), steps=steps,
                 log=log)


def _newer(owned: Sequence[Owned], mine: Owned) -> list[Owned]:
    return [r for r in owned if r.id != mine.id and r.order > mine.order]


class ScheduleSwapError(ServerError):
    """A step of the swap failed; the message says which recurring run is enabled now (exit code of the cause)."""

    def __init__(self, message: str, cause: KfpCiError) -> None:
        super().__init__(f"{message}: {cause}")
        self.exit_code = cause.exit_code


def _swap(
    api: RecurringApi,
    mine: Owned,
    *,
    pipeline_id: str,
    keep_old: bool,
    had_enabled: bool,
    steps: list[str],
    log: Callable[[str], None],
) -> ScheduleOutcome:
    owned = api.list_owned(pipeline_id)
    newer = _newer(owned, mine)
    if newer:
        return _step_back(api, mine, newer, keep_old, steps, log)
    old_enabled = [r.id for r in owned if r.id != mine.id and r.enabled]
    try:
        api.enable(mine.id)
    except NotFound:  # a newer concurrent deploy already replaced (and deleted) ours
        return _step_back(api, mine, _newer(api.list_owned(pipeline_id), mine), True, steps, log)
    except KfpCiError as exc:
        removed = _try(api.delete, mine.id)
        now = f"recurring run {', '.join(old_enabled)} stays the enabled one" if old_enabled else \
            "no recurring run was enabled before either"
        left = "removed it" if removed else f"it is left disabled ({mine.id}; the next deploy removes it)"
        raise ScheduleSwapError(f"could not enable the new recurring run {mine.id}, {left}; {now}", exc) from None
    steps.append(f"enabled {mine.id}")
    log(f"enabled recurring run {mine.id}")
    owned = api.list_owned(pipeline_id)
    newer = _newer(owned, mine)
    if newer:
        _quiet(api.disable, mine.id)
        return _step_back(api, mine, newer, keep_old, steps, log)
    for run in owned:
        # enabled before the swap, or by a concurrent, older deploy after our first look
        if run.id != mine.id and run.enabled:
            try:
                _quiet(api.disable, run.id)
            except KfpCiError as exc:
                _roll_back(api, mine, run, exc)
            steps.append(f"disabled {run.id}")
            log(f"disabled recurring run {run.id}")
    for run in owned:
        if run.id != mine.id and not keep_old and run.order < mine.order:
            try:
                _quiet(api.delete, run.id)
            except KfpCiError as exc:  # disabled already: a leftover the next deploy removes, not a failure
                log(f"could not delete the replaced recurring run {run.id} (disabled; the next deploy removes it): "
                    f"{exc}")
                continue
            steps.append(f"deleted {run.id}")
            log(f"deleted recurring run {run.id}")
    return ScheduleOutcome("swapped" if had_enabled else "created", mine.id, steps)


def _try(action: Callable[[str], None], recurring_run_id: str) -> bool:
    """Best effort (cleaning up after a failure): whether it worked."""
    try:
        _quiet(action, recurring_run_id)
    except KfpCiError:
        return False
    return True


def _roll_back(api: RecurringApi, mine: Owned, old: Owned, cause: KfpCiError) -> None:
    """Disabling ``old`` failed while ``mine`` is enabled too: disable ``mine`` again so one stays enabled."""
    if _try(api.disable, mine.id):
        raise ScheduleSwapError(f"could not disable the old recurring run {old.id}, so the swap was rolled back: "
                                f"{old.id} stays the enabled one (the new {mine.id} is disabled; the next deploy "
                                "finishes the swap)", cause) from None
    raise ScheduleSwapError(f"TWO recurring runs are enabled: the new {mine.id} and the old {old.id}, and neither "
                            f"could be disabled; disable {old.id} (KFP UI, or run the deploy again)", cause) from None


def _step_back(
    api: RecurringApi,
    mine: Owned,
    newer: Sequence[Owned],
    keep_old: bool,
    steps: list[str],
    log: Callable[[str], None],
) -> ScheduleOutcome:
    winner = max(newer, key=lambda r: r.order) if newer else None
    if winner is None:
        return ScheduleOutcome("superseded", None, steps)
    if not keep_old:
        _quiet(api.delete, mine.id)
    steps.append(f"a concurrent deploy created {winner.id}; stepped back")
    log(f"a concurrent deploy owns the schedule now ({winner.id}); leaving it to that deploy")
    return ScheduleOutcome("superseded", winner.id, steps)
