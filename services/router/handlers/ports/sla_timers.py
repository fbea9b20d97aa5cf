"""SLA timers: the promises on conversations, durable so that a restart loses none and whichever replica ticks
first fires them, once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from services.router.domain.sla import TimerKind
from services.router.handlers.ports.records import DueSlaTimer, LiveSlaTimer, NewSlaTimer, SlaDeadlines


class SlaTimers(Protocol):
    async def start(self, timers: Sequence[NewSlaTimer]) -> None:
        """Start these clocks (one multi-row insert for the batch)."""
        ...

    async def conversations_with_clock(self, conversation_ids: Iterable[str], kind: TimerKind) -> set[str]:
        """Which of these conversations already have a clock of this kind not stopped (running or paused), so
        that a second message from the customer does not start another one."""
        ...

    async def paused(self, conversation_ids: Iterable[str]) -> list[LiveSlaTimer]:
        """The paused clocks of these conversations (pending on the customer), to resume when they write."""
        ...

    async def resume(self, timers: Sequence[SlaDeadlines]) -> None:
        """Paused clocks run again, towards the deadlines recounted from the time they had left."""
        ...

    async def running(self, conversation_ids: Iterable[str], kind: TimerKind) -> list[LiveSlaTimer]:
        """The clocks of this kind that run on these conversations (neither stopped nor paused)."""
        ...

    async def pause(self, remaining: dict[str, float], now: datetime) -> None:
        """Timer id → seconds it has left: pending on the customer stops the clock without breaking the
        promise, and the time left is what it resumes with."""
        ...

    async def stop(self, conversation_ids: Iterable[str], kinds: Sequence[TimerKind], now: datetime) -> None:
        """Stop these conversations' clocks of these kinds, each recorded as met or missed: met when answered
        before the deadline (a paused clock cannot break)."""
        ...

    async def tenants_due(self, now: datetime) -> list[str]:
        """Tenants with a warning or a breach to fire, so the tick takes one tenant at a time."""
        ...

    async def claim_due(self, tenant_id: str, now: datetime, limit: int) -> list[DueSlaTimer]:
        """The tenant's clocks due to warn or breach, earliest deadline first, rows locked (SKIP LOCKED on
        PostgreSQL) so another replica's tick passes over them: none fires twice."""
        ...

    async def mark_fired(self, warned: Sequence[str], breached: Sequence[str], now: datetime) -> None:
        """The warnings and breaches fired (in the transaction that publishes them): one write per clock."""
        ...
