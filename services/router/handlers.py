"""Handlers: load what they need, call the domain, save, publish. One batch of events = one transaction.

Failure policy of the context stage (what its consumer does with a batch):
- invalid event (bad JSON, unknown schema version, bad identity) → dead-letter topic with the reason, commit;
- duplicate event id (redelivery) → skipped, commit;
- retriable (bus or database unavailable) → raise; the consumer does not commit and the batch is redelivered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from services.router.adapters.repository import NewCustomer, NewMessage, SqlRepository, Unit
from services.router.domain import routing
from services.router.domain.errors import InvalidIdentity, NotFound
from services.router.domain.identities import normalize_identity
from services.router.domain.model import Presence
from shared.bus import Bus, Outgoing, Record, deadletter
from shared.events import ConversationEvent, IdentityKind, InvalidEvent, decode_event
from shared.topics import Topics

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class BatchResult:
    stored: int
    duplicates: int
    deadlettered: int
    assigned: int


def assignment_event(topic: str, tenant_id: str, row: dict[str, Any]) -> Outgoing:
    """What agent consoles and other consumers see on routing.assignments (keyed by agent)."""
    body = {
        "type": "assignment",
        "seq": row["seq"],
        "id": row["id"],
        "tenant": tenant_id,
        "agent_id": row["agent_id"],
        "conversation_id": row["conversation_id"],
        "queue_id": row["queue_id"],
        "channel": row["channel"],
        "assigned_at": row["assigned_at"],
    }
    return Outgoing(topic, orjson.dumps(body), key=row["agent_id"].encode())


class OutboxRelay:
    """Publishes what transactions wrote to the outbox, then deletes it: nothing is published that was not
    committed, and nothing committed is left unpublished (a crash leaves rows that the next flush sends)."""

    def __init__(self, repo: SqlRepository, bus: Bus, batch: int = 1000) -> None:
        self.repo = repo
        self.bus = bus
        self.batch = batch

    async def flush(self) -> int:
        sent = 0
        while True:
            async with self.repo.unit() as u:
                claimed = await u.claim_outbox(self.batch)
                if not claimed:
                    return sent
                await self.bus.publish([o for _, o in claimed])
                await u.delete_outbox([seq for seq, _ in claimed])
            sent += len(claimed)


async def route_tenant(u: Unit, topics: Topics, tenant_id: str, now: datetime) -> list[Outgoing]:
    """Queue the tenant's unqueued conversations and assign waiting ones, oldest first, while agents have room.
    Agent rows stay locked until the transaction ends, so capacity is never oversubscribed."""
    queues = await u.queue_rules(tenant_id)
    agents = await u.lock_agents(tenant_id)
    waiting = await u.waiting_conversations(tenant_id)
    if not waiting:
        return []
    assignments, queued = routing.assign(waiting, queues, agents, now)
    await u.set_queues(queued, now)
    stored = await u.record_assignments(tenant_id, assignments)
    return [assignment_event(topics.assignments, tenant_id, row) for row in stored]


class ContextStage:
    """Conversation events in: identity → customer, thread → conversation, store message, route."""

    def __init__(self, repo: SqlRepository, bus: Bus, relay: OutboxRelay, clock: Clock, topics: Topics) -> None:
        self.repo = repo
        self.bus = bus
        self.topics = topics
        self.relay = relay
        self.clock = clock

    def _parse(self, records: Sequence[Record]) -> tuple[list[tuple[ConversationEvent, str]], list[Outgoing]]:
        events: list[tuple[ConversationEvent, str]] = []
        rejects: list[Outgoing] = []
        seen: set[tuple[str, str]] = set()
        for record in records:
            try:
                event = decode_event(record.value)
                identity = normalize_identity(event.sender.kind, event.sender.value)
            except (InvalidEvent, InvalidIdentity) as exc:
                reason = getattr(exc, "reason", str(exc))
                log.warning(
                    "event.rejected",
                    extra={
                        "reason": reason,
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                    },
                )
                rejects.append(deadletter(record, reason, self.topics.deadletter))
                continue
            if (event.tenant, event.id) in seen:
                continue
            seen.add((event.tenant, event.id))
            events.append((event, identity))
        return events, rejects

    async def handle(self, records: Sequence[Record]) -> BatchResult:
        events, rejects = self._parse(records)
        if rejects:
            await self.bus.publish(rejects)  # durable before the batch's offsets are committed
        now = self.clock()
        duplicates = 0
        assigned = 0
        if events:
            async with self.repo.unit() as u:
                known = await u.known_event_ids((e.tenant, e.id) for e, _ in events)
                fresh = [(e, ident) for e, ident in events if (e.tenant, e.id) not in known]
                duplicates = len(events) - len(fresh)
                outbox = await self._store(u, fresh, now)
                assigned = len(outbox)
                await u.add_outbox(outbox, now)
            events = fresh
            await self.relay.flush()
        return BatchResult(len(events), duplicates, len(rejects), assigned)

    async def _store(self, u: Unit, fresh: list[tuple[ConversationEvent, str]], now: datetime) -> list[Outgoing]:
        if not fresh:
            return []
        keys = [(e.tenant, e.sender.kind.value, ident) for e, ident in fresh]
        owners = await u.customers_by_identity(keys)
        new: dict[tuple[str, str, str], NewCustomer] = {}
        for (e, ident), key in zip(fresh, keys, strict=True):
            if key not in owners and key not in new:
                new[key] = _new_customer(e, ident)
        owners.update(await u.create_customers(list(new.values()), now))

        wanted = {owners[key]: (e.tenant, e.channel.value) for (e, _), key in zip(fresh, keys, strict=True)}
        convs = await u.open_missing_conversations(wanted, now)
        messages: list[NewMessage] = []
        last: dict[str, tuple[str, datetime]] = {}
        for (e, _), key in zip(fresh, keys, strict=True):
            customer_id = owners[key]
            conv = convs[customer_id]
            messages.append(
                NewMessage(
                    tenant_id=e.tenant,
                    event_id=e.id,
                    conversation_id=conv.id,
                    customer_id=customer_id,
                    channel=e.channel.value,
                    direction=e.direction.value,
                    channel_message_id=e.channel_message_id,
                    sender_kind=e.sender.kind.value,
                    subject=e.content.subject,
                    text=e.content.text,
                    sent_at=e.sent_at,
                    received_at=e.received_at,
                )
            )
            last[conv.id] = (e.channel.value, e.received_at)
        await u.insert_messages(messages, now)
        await u.touch_conversations(last)

        outbox: list[Outgoing] = []
        waiting_tenants = sorted({c.tenant_id for c in convs.values() if c.agent_id is None})
        for tenant_id in waiting_tenants:
            outbox.extend(await route_tenant(u, self.topics, tenant_id, now))
        return outbox


def _new_customer(event: ConversationEvent, identity: str) -> NewCustomer:
    claims = {c.kind: c.value for c in event.sender.claims}
    return NewCustomer(
        tenant_id=event.tenant,
        kind=event.sender.kind.value,
        value=identity,
        verified=event.sender.verified,
        name=event.sender.display_name,
        email=claims.get(IdentityKind.EMAIL),
        phone=claims.get(IdentityKind.PHONE),
    )


class AgentCommands:
    """Presence changes; going online pulls waiting work to the agent at once."""

    def __init__(self, repo: SqlRepository, relay: OutboxRelay, clock: Clock, topics: Topics) -> None:
        self.repo = repo
        self.relay = relay
        self.topics = topics
        self.clock = clock

    async def set_presence(self, tenant_id: str, agent_id: str, presence: Presence) -> int:
        now = self.clock()
        async with self.repo.unit() as u:
            if not await u.set_presence(tenant_id, agent_id, presence):
                raise NotFound("agent")
            outbox = await route_tenant(u, self.topics, tenant_id, now) if presence is Presence.ONLINE else []
            await u.add_outbox(outbox, now)
        await self.relay.flush()
        return len(outbox)
