"""SLA policies: what the desk promises (first response, next response, resolution) per channel and tier, and
the deadlines those promises make, counted in the queue's business hours when it has them. Pure.

A queue may override targets in its routing configuration:

    {"sla": {"first_response_s": {"email": 14400, "default": 600}, "resolution_s": {"default": 86400},
             "on_warning": {"raise_priority": true}, "on_breach": {"escalate_to": "<queue id>"}}}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from services.router.domain.routing.hours import BusinessHours

MINUTE, HOUR = 60.0, 3600.0


class TimerKind(StrEnum):
    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


# (first response, next response, resolution) in seconds; social = Messenger, Instagram, WhatsApp, Telegram.
DEFAULT_TARGETS: dict[str, tuple[float, float, float]] = {
    "email": (24 * HOUR, 24 * HOUR, 72 * HOUR),
    "chat": (2 * MINUTE, 2 * MINUTE, 4 * HOUR),
    "messenger": (1 * HOUR, 1 * HOUR, 24 * HOUR),
    "instagram": (1 * HOUR, 1 * HOUR, 24 * HOUR),
    "whatsapp": (1 * HOUR, 1 * HOUR, 24 * HOUR),
    "telegram": (1 * HOUR, 1 * HOUR, 24 * HOUR),
    "sms": (1 * HOUR, 1 * HOUR, 24 * HOUR),
    "in_app": (15 * MINUTE, 15 * MINUTE, 24 * HOUR),
    "voice": (2 * MINUTE, 2 * MINUTE, 4 * HOUR),
}
# Loyal customers get tighter promises: gold answered in half the time.
TIER_FACTOR: dict[str, float] = {"standard": 1.0, "silver": 0.75, "gold": 0.5, "platinum": 0.25}
_INDEX = {TimerKind.FIRST_RESPONSE: 0, TimerKind.NEXT_RESPONSE: 1, TimerKind.RESOLUTION: 2}


def target_s(kind: TimerKind, channel: str, tier: str | None, overrides: Mapping[str, Any] | None = None) -> float:
    """The promise for one timer kind, after the queue's overrides and the customer's tier."""
    by_channel = (overrides or {}).get(f"{kind.value}_s") or {}
    base = by_channel.get(channel, by_channel.get("default"))
    if base is None:
        base = DEFAULT_TARGETS.get(channel, DEFAULT_TARGETS["email"])[_INDEX[kind]]
    return float(base) * TIER_FACTOR.get(tier or "standard", 1.0)


@dataclass(frozen=True, slots=True)
class Started:
    """A conversation whose clocks start (opened, reopened) or restart (the customer wrote after an answer)."""

    tenant_id: str
    conversation_id: str
    channel: str
    queue_id: str | None
    tier: str | None


@dataclass(frozen=True, slots=True)
class Deadlines:
    warn_at: datetime
    due_at: datetime


def deadlines(start: datetime, seconds: float, warning_fraction: float, hours: BusinessHours | None) -> Deadlines:
    """When to warn and when the promise breaks, counting only opening time if the queue has hours."""
    if hours is None:
        return Deadlines(start + timedelta(seconds=seconds * warning_fraction), start + timedelta(seconds=seconds))
    return Deadlines(hours.add(start, seconds * warning_fraction), hours.add(start, seconds))


def remaining_s(now: datetime, due_at: datetime, hours: BusinessHours | None) -> float:
    """Time left on a clock (business time if the queue has hours): kept when it pauses."""
    if hours is None:
        return max(0.0, (due_at - now).total_seconds())
    return hours.between(now, due_at)


def resumed(
    now: datetime, remaining: float, total: float, warning_fraction: float, hours: BusinessHours | None
) -> Deadlines:
    """A paused clock starts again with the time it had left; the warning keeps its place in the budget."""
    warn_left = max(0.0, remaining - total * (1 - warning_fraction))
    if hours is None:
        return Deadlines(now + timedelta(seconds=warn_left), now + timedelta(seconds=remaining))
    return Deadlines(hours.add(now, warn_left), hours.add(now, remaining))


def actions(config: Mapping[str, Any] | None, stage: str) -> dict[str, Any]:
    """What to do on ``warning`` or ``breach``: raise_priority (bool), escalate_to (queue id), notify (always)."""
    return dict((config or {}).get(f"on_{stage}") or {})


_RESOLUTION = TimerKind.RESOLUTION.value  # an enum member's .value is a descriptor call: read once


def slot(kind: str) -> str:
    """Where a clock runs on its conversation: one response promise (first or next response) and one
    resolution promise at a time."""
    return "resolution" if kind == _RESOLUTION else "response"


def met(due_at: datetime, paused: bool, now: datetime) -> bool:
    """A clock stopped now kept its promise if it was answered by the deadline, or was paused (a promise paused
    on the customer cannot break)."""
    return paused or due_at >= now
