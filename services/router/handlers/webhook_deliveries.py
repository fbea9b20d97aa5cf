"""Durable outgoing webhooks: every routing event reaches every configured receiver, even one that is down for
hours, in order per conversation.

The ``routing.assignments`` consumer (``entrypoints/consumers.py``) queues each event once per receiver in the
``webhook_deliveries`` table and only then commits its offset, so a router restart loses nothing. The delivery
loop (``entrypoints/timers.py``) sends what is due: one delivery at a time per receiver and ordering key (the
conversation; the agent for events of none), so a later event of a conversation waits while an earlier one is
pending. A failure is retried with the backoff of ``domain/webhook_retry.py`` for up to the retry window
(SWITCHBOARD_WEBHOOK_RETRY_WINDOW_H); a delivery given up, or refused with a 4xx, is ``failed``: the dead-letter
list a supervisor reads (``GET /v1/webhook-deliveries?state=failed``) and redelivers from
(``POST /v1/webhook-deliveries/{id}/redeliver``). Every attempt carries the same ``Switchboard-Event-Id``, so a
receiver dedupes the rare repeat (a router that died between the POST and recording it)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.router.domain.errors import InvalidCommand, NotFound
from services.router.domain.webhook_retry import Outcome, RetryPolicy, outcome_of
from services.router.handlers.ports import Clock, Store
from services.router.handlers.ports.webhook_deliveries import (
    Attempted,
    DueDelivery,
    NewDelivery,
    State,
    WebhookSender,
)
from shared.bus import Record
from shared.feed_events import decode
from shared.ids import new_id

log = logging.getLogger(__name__)

MAX_ROUNDS = 50  # claim rounds per call: a chain advances one delivery a round, the loop's next tick goes on


def ordering_key(conversation_id: str | None, agent_id: str) -> str:
    return f"conversation:{conversation_id}" if conversation_id else f"agent:{agent_id}"


@dataclass(eq=False)
class WebhookDeliveries:
    repo: Store
    clock: Clock
    deployment: str  # topic prefix + consumer group: this deployment's loops send this deployment's deliveries
    urls: Sequence[str]
    sender: WebhookSender | None  # None: no receiver configured, nothing is sent
    policy: RetryPolicy
    retention: timedelta
    batch: int = 100
    lease: timedelta = timedelta(seconds=60)  # longer than a POST may take (SWITCHBOARD_WEBHOOK_TIMEOUT_S)
    draw: Callable[[], float] = random.random  # the jitter; passed in so tests can fix it
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # set when deliveries were queued

    async def accept(self, records: list[Record]) -> None:
        """The consumer: queue every record for every receiver, in one transaction. Every record is decoded
        before any is queued: one that fails (``InvalidEvent``) fails the batch, so the consume loop's split
        finds it and dead-letters it. A batch's records come partition by partition; they are queued by the
        event's ``at`` (a stable sort), so events of one conversation held by several agents keep their
        order."""
        events = [decode(record.value) for record in records]
        ordered = sorted(zip(records, events, strict=True), key=lambda pair: pair[1].at)
        rows = [
            NewDelivery(
                id=new_id(),
                tenant_id=event.tenant,
                url=url,
                event_id=event.id,
                event_type=event.type,
                conversation_id=event.conversation_id,
                ordering_key=ordering_key(event.conversation_id, event.agent_id),
                body=record.value,
            )
            for record, event in ordered
            for url in self.urls
        ]
        async with self.repo.unit() as u:
            await u.webhook_deliveries.add(self.deployment, rows, self.clock())
            u.after_commit(self.wake.set)

    async def deliver_due(self, stop: asyncio.Event | None = None) -> int:
        """Send what is due, round after round while chains advance (until ``stop``: a round in flight is
        finished and recorded); returns how many were delivered."""
        if self.sender is None:
            return 0
        delivered = 0
        for _ in range(MAX_ROUNDS):
            if stop is not None and stop.is_set():
                break
            now = self.clock()
            async with self.repo.unit() as u:
                due = await u.webhook_deliveries.claim_due(self.deployment, now, now + self.lease, self.batch)
            if not due:
                break
            attempts = await asyncio.gather(*(self._attempt(d) for d in due))
            async with self.repo.unit() as u:
                await u.webhook_deliveries.record(attempts, self.clock())
            delivered += sum(a.state == "delivered" for a in attempts)
            if all(a.state == "pending" for a in attempts):
                break  # every chain waits for its next attempt: nothing behind them is due
        return delivered

    async def _attempt(self, due: DueDelivery) -> Attempted:
        assert self.sender is not None
        status, error = await self.sender.send(due.url, due.body, due.event_id)
        now = self.clock()
        outcome = outcome_of(status)
        tried = due.attempts + 1
        if outcome is Outcome.DELIVERED:
            return Attempted(due.id, due.tenant_id, "delivered", status, None, None)
        why = error or f"HTTP {status}"
        if outcome is Outcome.REFUSED:
            log.warning("webhook.refused", extra={"delivery_id": due.id, "event_id": due.event_id, "status": status})
            return Attempted(due.id, due.tenant_id, "failed", status, f"refused: {why}", None)
        at = self.policy.next_attempt(due.window_from, tried, now, self.draw())
        if at is None:
            log.warning("webhook.gave_up", extra={"delivery_id": due.id, "event_id": due.event_id, "attempts": tried})
            return Attempted(due.id, due.tenant_id, "failed", status, f"gave up after {tried} attempts: {why}", None)
        log.info("webhook.retry", extra={"delivery_id": due.id, "attempt": tried, "status": status})
        return Attempted(due.id, due.tenant_id, "pending", status, why, at)

    async def page(self, tenant_id: str, state: State, limit: int, before: datetime | None) -> list[dict[str, Any]]:
        async with self.repo.reading() as r:
            return await r.webhook_deliveries.page(tenant_id, state, limit, before)

    async def redeliver(self, tenant_id: str, delivery_id: str) -> dict[str, Any]:
        """A delivered or failed delivery, pending again and due now with a fresh retry window; 404 for another
        tenant's id, 409 for one still pending (it is already on its way)."""
        now = self.clock()
        async with self.repo.unit() as u:
            found = await u.webhook_deliveries.one(tenant_id, delivery_id)
            if found is None:
                raise NotFound(f"no webhook delivery {delivery_id}")
            if found["state"] == "pending":
                raise InvalidCommand(f"webhook delivery {delivery_id} is pending: it will be tried again")
            await u.webhook_deliveries.redeliver(tenant_id, delivery_id, now)
            u.after_commit(self.wake.set)
            again = await u.webhook_deliveries.one(tenant_id, delivery_id)
        log.info("webhook.redelivered", extra={"tenant": tenant_id, "delivery_id": delivery_id})
        assert again is not None
        return again

    async def forget_old(self) -> int:
        async with self.repo.unit() as u:
            return await u.webhook_deliveries.forget_finished_before(self.clock() - self.retention)
