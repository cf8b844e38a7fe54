"""Retry policy for the KFP client: exponential backoff with full jitter, bounded in attempts and total time.

The policy only computes waits and keeps the budget; :class:`kfp_ci.client.Client` decides *what* may be retried
(idempotent calls freely, creates only after looking the object up). Clock and sleep are injectable, and
:func:`set_testing` turns the backoff off for a whole test session (like stamina's testing mode).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import random

__all__ = ["Budget", "RetryPolicy", "is_testing", "parse_retry_after", "set_testing"]

_testing: dict[str, object] = {"on": False, "attempts": None}


def set_testing(testing: bool, *, attempts: int | None = None) -> None:
    """Turn backoff off (waits become 0) and optionally cap the attempts of every policy."""
    _testing["on"] = testing
    _testing["attempts"] = attempts if testing else None


def is_testing() -> bool:
    return bool(_testing["on"])


@contextmanager
def testing(attempts: int | None = None) -> Iterator[None]:
    """``with testing(): ...``: backoff off inside the block, restored afterwards."""
    before = dict(_testing)
    set_testing(True, attempts=attempts)
    try:
        yield
    finally:
        _testing.update(before)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); ``None`` if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    reference = time.time() if now is None else now
    return max(0.0, when.timestamp() - reference)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry.

    ``attempts`` counts every try (1 = no retry). The n-th wait is uniform in ``[0, min(maximum, initial * 2**n)]``
    (full jitter) unless the server sent ``Retry-After``, which is honoured up to ``maximum``. No wait starts
    once ``timeout`` seconds have passed since the first try.
    """

    attempts: int = 5
    initial: float = 0.5
    maximum: float = 10.0
    timeout: float = 60.0
    jitter: bool = True
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    rng: random.Random | None = field(default=None, repr=False, compare=False)
    """The jitter's source; ``None``: one shared ``random.Random``, created on the first retry."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(attempts=1)

    def backoff(self, retry: int, retry_after: float | None = None) -> float:
        """The wait before retry number ``retry`` (0-based)."""
        if is_testing():
            return 0.0
        if retry_after is not None:
            return min(retry_after, self.maximum)
        cap = min(self.maximum, self.initial * (2.0**retry))
        if not self.jitter:
            return cap
        return (self.rng or _shared_rng()).uniform(0.0, cap)

    def budget(self) -> Budget:
        return Budget(self)


_rng: list[random.Random] = []


def _shared_rng() -> random.Random:
    """``random`` is imported on the first retry only: most commands never retry."""
    if not _rng:
        import random

        _rng.append(random.Random())
    return _rng[0]


class Budget:
    """The retry state of one logical call."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.started = policy.clock()
        self.tries = 0
        limit = _testing["attempts"]
        self.max_tries = min(policy.attempts, limit) if isinstance(limit, int) else policy.attempts

    def next_try(self) -> None:
        self.tries += 1

    def wait(self, retry_after: float | None = None) -> bool:
        """Sleep before the next try; ``False`` when attempts or time are used up (nothing slept)."""
        if self.tries >= self.max_tries:
            return False
        delay = self.policy.backoff(self.tries - 1, retry_after)
        elapsed = self.policy.clock() - self.started
        if elapsed + delay > self.policy.timeout:
            return False
        if delay > 0:
            self.policy.sleep(delay)
        return True
