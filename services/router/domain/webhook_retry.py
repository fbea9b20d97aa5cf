"""When an outgoing webhook is tried again, and when it is given up: the retry policy of durable deliveries
(``services/router/handlers/webhook_deliveries.py``), pure so that a whole day of retries is checked in
microseconds.

Exponential backoff with "equal jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter"): the n-th
retry waits between half and all of ``min(cap, first * 2**(n-1))``, so receivers coming back are not hit by every
sender at once, and no retry comes sooner than half its step. A delivery is tried for ``window`` from when it was
first queued (or last redelivered by a supervisor); an attempt that would fall after the window is not made and
the delivery is dead-lettered instead."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum


class Outcome(Enum):
    DELIVERED = "delivered"  # 2xx or 3xx: the receiver has it
    RETRY = "retry"  # a network error, a timeout, 5xx, 408 or 429: the receiver may take it later
    REFUSED = "refused"  # any other 4xx: the receiver will never take it as it is; dead-lettered at once


RETRIABLE_4XX = frozenset({408, 425, 429})  # RFC 9110 §15.5.9 timeout, RFC 8470 too early, RFC 6585 §4


def outcome_of(status: int | None) -> Outcome:
    """``status`` is the HTTP status, ``None`` when no response came (connection refused, timeout)."""
    if status is None or status >= 500 or status in RETRIABLE_4XX:
        return Outcome.RETRY
    if status >= 400:
        return Outcome.REFUSED
    return Outcome.DELIVERED


@dataclass(frozen=True)
class RetryPolicy:
    first: timedelta = timedelta(seconds=1)
    cap: timedelta = timedelta(hours=1)
    window: timedelta = timedelta(hours=24)

    def __post_init__(self) -> None:
        if self.first <= timedelta(0) or self.cap < self.first or self.window <= timedelta(0):
            raise ValueError("a retry policy needs 0 < first <= cap and a positive window")

    def step(self, failed_attempts: int) -> timedelta:
        """The backoff step after ``failed_attempts`` (>= 1) failures: doubling from ``first``, at most ``cap``."""
        exponent = min(max(failed_attempts - 1, 0), 62)  # 2**62 seconds overflows timedelta long before
        seconds = min(self.cap.total_seconds(), self.first.total_seconds() * 2.0**exponent)
        return timedelta(seconds=seconds)

    def next_attempt(
        self, window_from: datetime, failed_attempts: int, now: datetime, jitter: float
    ) -> datetime | None:
        """When to try again after the ``failed_attempts``-th failure at ``now``; ``None``: give up (the next
        attempt would fall after ``window_from + window``). ``jitter`` in [0, 1] is the random draw, passed in
        so the policy stays deterministic under test."""
        if not 0.0 <= jitter <= 1.0:
            raise ValueError("jitter is a draw in [0, 1]")
        step = self.step(failed_attempts)
        at = now + step / 2 + step * (jitter / 2)
        return at if at <= window_from + self.window else None
