"""SLA timers: the promises on conversations, durable so that a restart loses none and whichever replica ticks
first fires them, once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from services.router.domain.sla import TimerKind
from services.router.handlers.ports.records import DueSlaTimer, LiveSlaTimer, NewSlaTimer, SlaDeadlines


class SlaTimers(Protocol):
    async def start(self, timers: Sequence[NewSlaTimer]) -> None:
        """Start these clocks (one multi-row insert for the batch)."""
        ...

    async def conversations_with_clock(self, keys: Iterable[tuple[str, str]], kind: TimerKind) -> set[str]:
        """Which of these (tenant, conversation id) already have a clock of this kind not stopped (running or
        paused), so that a second message from the customer does not start another one."""
        ...

    async def paused(self, keys: Iterable[tuple[str, str]]) -> list[LiveSlaTimer]:
        """The paused clocks of these (tenant, conversation id) (pending on the customer), to resume when they write."""
        ...

    async def resume(self, timers: Sequence[SlaDeadlines]) -> None:
        """Paused clocks run again, towards the deadlines recounted from the time they had left."""
        ...

    async def running(self, keys: Iterable[tuple[str, str]], kind: TimerKind) -> list[LiveSlaTimer]:
        """The clocks of this kind that run on these (tenant, conversation id) (neither stopped nor paused)."""
        ...

    async def pause(self, remaining: Mapping[tuple[str, str], float], now: datetime) -> None:
        """(tenant, timer id) → seconds it has left: pending on the customer stops the clock without breaking the
        promise, and the time left is what it resumes with."""
        ...

    async def stop(self, keys: Iterable[tuple[str, str]], kinds: Sequence[TimerKind], now: datetime) -> None:
        """Stop these (tenant, conversation id)'s clocks of these kinds, each recorded as met or missed: met when
        answered before the deadline (a paused clock cannot break)."""
        ...

    async def tenants_due(self, now: datetime) -> list[str]:
        """Tenants with a warning or a breach to fire, so the tick takes one tenant at a time."""
        ...

    async def claim_due(self, tenant_id: str, now: datetime, limit: int) -> list[DueSlaTimer]:
        """The tenant's clocks due to warn or breach, earliest deadline first, rows locked (SKIP LOCKED on
        PostgreSQL) so another replica's tick passes over them: none fires twice."""
        ...

    async def mark_fired(self, tenant_id: str, warned: Sequence[str], breached: Sequence[str], now: datetime) -> None:
        """The tenant's warnings and breaches fired (in the transaction that publishes them): one write per clock."""
        ...
