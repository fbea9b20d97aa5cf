"""SLA timers: the promises on conversations, durable so that a restart loses none and whichever replica ticks
first fires them, once. A running clock lives on its conversation (one slot per kind of promise:
``domain.sla.slot``); a stopped one is settled into the history."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from services.router.handlers.ports.records import (
    DueSlaTimer,
    LiveSlaTimer,
    NewSlaTimer,
    SettledSlaTimer,
    SlaDeadlines,
)


class SlaTimers(Protocol):
    async def start(self, timers: Sequence[NewSlaTimer]) -> None:
        """Start these clocks on conversations already written, each in its slot (one statement for the batch).
        A conversation opened now is written with its clocks instead (``Conversations.insert_conversations``)."""
        ...

    async def live(self, keys: Iterable[tuple[str, str]]) -> list[LiveSlaTimer]:
        """The clocks running or paused on these (tenant, conversation id)."""
        ...

    async def resume(self, timers: Sequence[SlaDeadlines]) -> None:
        """Paused clocks run again, towards the deadlines recounted from the time they had left."""
        ...

    async def pause(self, clocks: Sequence[tuple[LiveSlaTimer, float]], now: datetime) -> None:
        """(clock, seconds it has left): pending on the customer stops the clock without breaking the promise,
        and the time left is what it resumes with."""
        ...

    async def settle(self, settled: Sequence[SettledSlaTimer], *, emptied: bool = False) -> None:
        """These clocks stopped: each leaves its slot for the history, met or missed. ``emptied``: the caller's
        own write of the rows emptied the slots already (``resolve_conversations``): the history only."""
        ...

    async def tenants_due(self, now: datetime) -> list[str]:
        """Tenants with a warning or a breach to fire, so the tick takes one tenant at a time."""
        ...

    async def claim_due(self, tenant_id: str, now: datetime, limit: int) -> list[DueSlaTimer]:
        """The tenant's clocks due to warn or breach, on at most ``limit`` conversations, earliest deadline
        first, rows locked (SKIP LOCKED on PostgreSQL) so another replica's tick passes over them: none fires
        twice."""
        ...

    async def mark_fired(
        self, tenant_id: str, warned: Sequence[DueSlaTimer], breached: Sequence[DueSlaTimer], now: datetime
    ) -> None:
        """The tenant's warnings and breaches fired (in the transaction that publishes them): one write per
        conversation."""
        ...
