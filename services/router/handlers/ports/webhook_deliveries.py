"""Outgoing webhook deliveries (``handlers/webhook_deliveries.py``): the durable queue per receiver, and the
sender that POSTs one delivery."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

State = Literal["pending", "delivered", "failed"]


@dataclass(frozen=True, slots=True)
class NewDelivery:
    id: str
    tenant_id: str
    url: str
    event_id: str
    event_type: str
    conversation_id: str | None
    ordering_key: str
    body: bytes


@dataclass(frozen=True, slots=True)
class DueDelivery:
    id: str
    tenant_id: str
    url: str
    event_id: str
    body: bytes
    attempts: int
    window_from: datetime


@dataclass(frozen=True, slots=True)
class Attempted:
    """What one attempt came to: ``state`` pending with ``next_attempt_at`` (retry), delivered or failed."""

    id: str
    tenant_id: str
    state: State
    status: int | None
    error: str | None
    next_attempt_at: datetime | None


class WebhookDeliveries(Protocol):
    async def add(self, deployment: str, rows: Sequence[NewDelivery], now: datetime) -> int:
        """Queue those not queued yet for their receiver (a record consumed twice is queued once), due now;
        returns how many were new."""
        ...

    async def claim_due(self, deployment: str, now: datetime, lease_until: datetime, limit: int) -> list[DueDelivery]:
        """The deployment's deliveries due at ``now`` and first in line of their receiver and ordering key (no
        earlier one of the same pair pending), oldest first, leased until ``lease_until`` (rows locked with
        SKIP LOCKED on PostgreSQL, so two loops never take the same one)."""
        ...

    async def record(self, attempts: Sequence[Attempted], now: datetime) -> None:
        """Each attempt's outcome; the lease ends."""
        ...

    async def one(self, tenant_id: str, delivery_id: str) -> dict[str, Any] | None: ...

    async def page(self, tenant_id: str, state: State, limit: int, before: datetime | None) -> list[dict[str, Any]]:
        """The tenant's deliveries in ``state``, newest first, queued before ``before`` when given."""
        ...

    async def redeliver(self, tenant_id: str, delivery_id: str, now: datetime) -> None:
        """Pending again, due now, with a fresh retry window."""
        ...

    async def forget_finished_before(self, cutoff: datetime) -> int:
        """Delivered and failed deliveries finished before ``cutoff`` (they hold routing events, some with a
        customer's text)."""
        ...


class WebhookSender(Protocol):
    async def send(self, url: str, body: bytes, event_id: str) -> tuple[int | None, str | None]:
        """POST one delivery: (HTTP status, None), or (None, what went wrong) when no response came."""
        ...

    async def close(self) -> None: ...
