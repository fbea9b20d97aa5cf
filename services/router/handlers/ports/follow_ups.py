"""Follow-ups after a resolution: durable, so a restart loses none and whichever replica ticks first sends each
one, once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class DueFollowUp:
    """A resolved conversation whose check-in is due, with what its text depends on."""

    conversation_id: str
    customer_id: str
    channel: str
    queue_id: str | None
    language: str | None  # the customer's
    resolved_at: datetime
    wrote_again: bool  # the customer started another conversation since: no check-in


class FollowUps(Protocol):
    async def targets(self, tenant_id: str, conversation_ids: Iterable[str]) -> dict[str, tuple[str | None, str]]:
        """Each conversation's queue and channel; one the tenant does not have is left out."""
        ...

    async def schedule(self, tenant_id: str, due: Mapping[str, datetime]) -> None:
        """Check in on each of these (resolved) conversations of the tenant at its time, in one write."""
        ...

    async def tenants_due(self, now: datetime) -> list[str]:
        """Tenants with a follow-up due, sorted."""
        ...

    async def claim_due(self, tenant_id: str, now: datetime, limit: int) -> list[DueFollowUp]:
        """The tenant's due follow-ups of conversations still resolved, earliest first, rows locked (SKIP LOCKED
        on PostgreSQL) until the transaction ends."""
        ...

    async def finish(self, tenant_id: str, conversation_ids: Sequence[str], sent: Sequence[str], now: datetime) -> None:
        """These follow-ups of the tenant are done (none is due any more); ``sent`` ones went out ``now``."""
        ...
