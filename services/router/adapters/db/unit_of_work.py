"""The router's repository over SQLAlchemy Core: batched, set-based statements so a batch of N events costs a
fixed number of round trips, not N. The same contract suite runs it on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Table, bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.adapters.db import tables as t
from services.router.domain.errors import InvalidCommand, NotFound
from services.router.domain.model import (
    AgentRow,
    Assignment,
    ConversationStatus,
    Presence,
    QueueRule,
)
from shared.bus import Outgoing
from shared.store import Database

IdentityKey = tuple[str, str, str]  # tenant, kind, normalized value


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class NewCustomer:
    tenant_id: str
    kind: str
    value: str
    verified: bool
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    language: str | None = None
    tier: str = "standard"
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NewIdentity:
    tenant_id: str
    customer_id: str
    kind: str
    value: str
    verified: bool


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """A timeline entry that is not a message: opened, reopened, assigned, resolved, merged..."""

    tenant_id: str
    customer_id: str
    conversation_id: str | None
    kind: str
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OpenConversation:
    id: str
    tenant_id: str
    customer_id: str
    channel: str
    queue_id: str | None
    agent_id: str | None
    awaiting: str | None = None  # "customer" once an agent has answered


@dataclass(frozen=True, slots=True)
class NewMessage:
    id: str
    tenant_id: str
    event_id: str
    conversation_id: str
    customer_id: str
    channel: str
    direction: str
    channel_message_id: str | None
    sender_kind: str
    subject: str | None
    text: str
    sent_at: datetime | None
    received_at: datetime
    thread_ref: str | None = None
    author: str | None = None
    status: str | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)  # references (name, type, size, ref)
    sanitized: dict[str, Any] | None = None  # what the edge changed so it could be stored (shared/events.py)


class Unit:
    """One transaction's worth of repository operations."""

    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this unit's transaction has committed (never after a rollback)."""
        self._after_commit.append(callback)

    def _insert_ignore(self, table: Table) -> Any:
        """INSERT ... ON CONFLICT DO NOTHING, on either dialect."""
        if self.dialect == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing()
        return sqlite.insert(table).on_conflict_do_nothing()

    # -- dedupe ----------------------------------------------------------------------------------------
    async def known_event_ids(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        keys = list(keys)
        if not keys:
            return set()
        rows = await self.conn.execute(
            select(t.messages.c.tenant_id, t.messages.c.event_id).where(
                tuple_(t.messages.c.tenant_id, t.messages.c.event_id).in_(keys)
            )
        )
        return {(r[0], r[1]) for r in rows}

    # -- identity → customer ---------------------------------------------------------------------------
    async def customers_by_identity(self, keys: Iterable[IdentityKey]) -> dict[IdentityKey, str]:
        keys = list(set(keys))
        if not keys:
            return {}
        i = t.identities.c
        rows = await self.conn.execute(
            select(i.tenant_id, i.kind, i.value, i.customer_id).where(tuple_(i.tenant_id, i.kind, i.value).in_(keys))
        )
        return {(r[0], r[1], r[2]): r[3] for r in rows}

    async def lock_tenants(self, tenant_ids: Iterable[str]) -> None:
        """Serialize identity resolution per tenant across router replicas (PostgreSQL advisory lock, held to
        the end of the transaction). Routing locks the tenant's agents anyway; this lock also makes merges
        and "new identity, verified claim" links race-free. SQLite has a single writer already."""
        if self.dialect != "postgresql":
            return
        for tenant_id in sorted(set(tenant_ids)):
            await self.conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"switchboard:{tenant_id}"))))

    async def customers_of_conversations(self, keys: Iterable[tuple[str, str]]) -> dict[str, str]:
        """(tenant, conversation id) → customer id, for replies that name their conversation."""
        keys = list(set(keys))
        if not keys:
            return {}
        c = t.conversations.c
        rows = await self.conn.execute(
            select(c.id, c.customer_id).where(tuple_(c.tenant_id, c.id).in_(keys), c.status != "merged")
        )
        return {r.id: r.customer_id for r in rows}

    async def customer_ages(self, customer_ids: Iterable[str]) -> dict[str, tuple[datetime, str]]:
        ids = list(set(customer_ids))
        if not ids:
            return {}
        c = t.customers.c
        rows = await self.conn.execute(select(c.id, c.created_at).where(c.id.in_(ids)))
        return {r.id: (r.created_at, r.id) for r in rows}

    async def insert_customers(self, new: dict[str, NewCustomer], now: datetime) -> None:
        if new:
            await self.conn.execute(
                insert(t.customers),
                [
                    dict(
                        id=cid,
                        tenant_id=n.tenant_id,
                        name=n.name,
                        email=n.email,
                        phone=n.phone,
                        language=n.language,
                        tier=n.tier,
                        tags=[],
                        consent={},
                        attributes=n.attributes,
                        created_at=now,
                    )
                    for cid, n in new.items()
                ],
            )

    async def attach_identities(self, rows: Sequence[NewIdentity], now: datetime) -> None:
        """Identities in key order (no lock-order deadlocks); one owner each, the unique index decides."""
        if rows:
            ordered = sorted(rows, key=lambda r: (r.tenant_id, r.kind, r.value))
            await self.conn.execute(
                self._insert_ignore(t.identities),
                [dict(id=new_id(), created_at=now, **vars_of(r)) for r in ordered],
            )

    async def create_customers(self, new: Sequence[NewCustomer], now: datetime) -> dict[IdentityKey, str]:
        """Create one customer per new identity. Safe under races: the identity's unique index decides who
        wins; a loser's customer row is removed in the same transaction and the winner's id returned."""
        if not new:
            return {}
        ids = {(n.tenant_id, n.kind, n.value): new_id() for n in new}
        await self.insert_customers({ids[(n.tenant_id, n.kind, n.value)]: n for n in new}, now)
        await self.attach_identities(
            [NewIdentity(n.tenant_id, ids[(n.tenant_id, n.kind, n.value)], n.kind, n.value, n.verified) for n in new],
            now,
        )
        owners = await self.customers_by_identity(ids)
        losers = [cid for key, cid in ids.items() if owners.get(key) != cid]
        if losers:
            await self.conn.execute(delete(t.customers).where(t.customers.c.id.in_(losers)))
        return owners

    async def add_suggestions(self, rows: Sequence[tuple[str, str, str, str, str]], now: datetime) -> None:
        """(tenant, customer, other customer, kind, value): "may be the same person", for a human to decide."""
        if rows:
            await self.conn.execute(
                self._insert_ignore(t.suggestions),
                [
                    dict(id=new_id(), tenant_id=tn, customer_id=c, other_customer_id=o, kind=k, value=v, created_at=now)
                    for tn, c, o, k, v in rows
                ],
            )

    async def apply_verified_profile(self, updates: dict[str, dict[str, Any]], now: datetime) -> None:
        """customer id → profile fields an app vouched for (tier, language, name)."""
        c = t.customers.c
        for cid, values in updates.items():
            if values:
                await self.conn.execute(update(t.customers).where(c.id == cid).values(**values, updated_at=now))

    # -- conversations ---------------------------------------------------------------------------------
    async def open_conversations(self, customer_ids: Iterable[str]) -> dict[str, OpenConversation]:
        customer_ids = list(set(customer_ids))
        if not customer_ids:
            return {}
        c = t.conversations.c
        rows = await self.conn.execute(
            select(c.id, c.tenant_id, c.customer_id, c.channel, c.queue_id, c.agent_id, c.awaiting).where(
                c.customer_id.in_(customer_ids), c.status == ConversationStatus.OPEN.value
            )
        )
        return {r.customer_id: OpenConversation(*r) for r in rows}

    async def open_missing_conversations(
        self, wanted: dict[str, tuple[str, str]], now: datetime, reopen_within: timedelta | None = None
    ) -> tuple[dict[str, OpenConversation], list[Lifecycle]]:
        """``wanted``: customer id → (tenant, channel). Returns the open conversation of every customer and the
        lifecycle entries it caused. Without an open one, the customer's latest resolved conversation reopens
        if it was resolved within ``reopen_within``; otherwise a new one starts, linked to the previous.
        The partial unique index keeps it to one open conversation per customer even under races."""
        existing = await self.open_conversations(wanted)
        missing = {cid: v for cid, v in wanted.items() if cid not in existing}
        events: list[Lifecycle] = []
        if not missing:
            return existing, events
        c = t.conversations.c
        latest: dict[str, tuple[str, datetime | None]] = {}
        rows = await self.conn.execute(
            select(c.customer_id, c.id, c.resolved_at)
            .where(c.customer_id.in_(list(missing)), c.status == ConversationStatus.RESOLVED.value)
            .order_by(c.resolved_at.desc())
        )
        for r in rows:
            latest.setdefault(r.customer_id, (r.id, r.resolved_at))
        reopen = {
            cid: conv_id
            for cid, (conv_id, resolved_at) in latest.items()
            if reopen_within is not None and resolved_at is not None and now - resolved_at <= reopen_within
        }
        if reopen:
            await self.conn.execute(
                update(t.conversations)
                .where(c.id.in_(list(reopen.values())))
                .values(
                    status=ConversationStatus.OPEN.value, reopened_at=now, agent_id=None, queue_id=None, queued_at=None
                )
            )
            events += [Lifecycle(missing[cid][0], cid, conv, "reopened", now) for cid, conv in reopen.items()]
        fresh = {cid: v for cid, v in missing.items() if cid not in reopen}
        if fresh:
            new_rows: list[dict[str, Any]] = [
                dict(
                    id=new_id(),
                    tenant_id=tenant,
                    customer_id=cid,
                    status=ConversationStatus.OPEN.value,
                    channel=channel,
                    opened_at=now,
                    last_message_at=now,
                    previous_conversation_id=latest.get(cid, (None, None))[0],
                )
                for cid, (tenant, channel) in fresh.items()
            ]
            await self.conn.execute(self._insert_ignore(t.conversations), new_rows)
            events += [
                Lifecycle(r["tenant_id"], r["customer_id"], r["id"], "opened", now, {"channel": r["channel"]})
                for r in new_rows
            ]
        existing.update(await self.open_conversations(missing))
        live = {conv.id for conv in existing.values()}
        return existing, [e for e in events if e.conversation_id in live]

    async def touch_conversations(self, last: dict[str, tuple[str, datetime]]) -> None:
        """conversation id → (channel the customer last used, time): replies go back on that channel."""
        if not last:
            return
        c = t.conversations.c
        stmt = (
            update(t.conversations)
            .where(c.id == bindparam("b_id"))
            .values(
                channel=bindparam("b_channel"), last_message_at=bindparam("b_at"), awaiting="agent", pending_since=None
            )
        )
        await self.conn.execute(stmt, [dict(b_id=cid, b_channel=ch, b_at=at) for cid, (ch, at) in last.items()])

    async def insert_messages(self, rows: Sequence[NewMessage], now: datetime) -> None:
        """Messages and their timeline entries, two multi-row statements for the whole batch."""
        if not rows:
            return
        await self.conn.execute(self._insert_ignore(t.messages), [dict(created_at=now, **vars_of(m)) for m in rows])
        await self.conn.execute(
            insert(t.timeline),
            [
                dict(
                    tenant_id=m.tenant_id,
                    customer_id=m.customer_id,
                    conversation_id=m.conversation_id,
                    kind="message",
                    message_id=m.id,
                    channel=m.channel,
                    at=m.received_at,
                    data={},
                )
                for m in rows
            ],
        )

    async def add_lifecycle(self, rows: Sequence[Lifecycle]) -> None:
        if rows:
            await self.conn.execute(
                insert(t.timeline),
                [
                    dict(
                        tenant_id=e.tenant_id,
                        customer_id=e.customer_id,
                        conversation_id=e.conversation_id,
                        kind=e.kind,
                        at=e.at,
                        data=e.data,
                    )
                    for e in rows
                ],
            )

    async def mark_escalated(self, conversation_ids: Sequence[str], now: datetime) -> None:
        if conversation_ids:
            c = t.conversations.c
            await self.conn.execute(
                update(t.conversations)
                .where(c.id.in_(list(set(conversation_ids))))
                .values(escalated_at=func.coalesce(c.escalated_at, now))
            )

    async def add_conversation_notes(
        self, tenant_id: str, notes: Sequence[tuple[str, str, dict[str, Any]]], now: datetime
    ) -> None:
        """Lifecycle entries known by conversation (escalated, auto-acknowledged): on their customer's timeline."""
        if not notes:
            return
        c = t.conversations.c
        ids = list({cid for cid, _, _ in notes})
        owners = {
            r.id: r.customer_id
            for r in await self.conn.execute(select(c.id, c.customer_id).where(c.id.in_(ids), c.tenant_id == tenant_id))
        }
        await self.add_lifecycle(
            [
                Lifecycle(tenant_id, owners[cid], cid, kind, now, orjson.loads(orjson.dumps(data)))
                for cid, kind, data in notes
                if cid in owners
            ]
        )

    async def resolve_conversation(
        self, tenant_id: str, conversation_id: str, note: str | None, now: datetime
    ) -> str | None:
        """Resolve an open conversation: ends its live assignment (freeing the agent's capacity). Returns the
        agent who held it, if one did."""
        c = t.conversations.c
        row = (
            await self.conn.execute(
                select(c.customer_id, c.status, c.agent_id)
                .where(c.tenant_id == tenant_id, c.id == conversation_id)
                .with_for_update()
            )
        ).first()
        if row is None:
            raise NotFound(f"no conversation {conversation_id}")
        if row.status != ConversationStatus.OPEN.value:
            raise InvalidCommand(f"conversation is {row.status}, not open")
        await self.conn.execute(
            update(t.conversations)
            .where(c.id == conversation_id)
            .values(status=ConversationStatus.RESOLVED.value, resolved_at=now, resolution_note=note)
        )
        s = t.assignments.c
        await self.conn.execute(
            update(t.assignments).where(s.conversation_id == conversation_id, s.ended_at.is_(None)).values(ended_at=now)
        )
        await self.add_lifecycle([Lifecycle(tenant_id, row.customer_id, conversation_id, "resolved", now)])
        return str(row.agent_id) if row.agent_id is not None else None

    # -- routing state ---------------------------------------------------------------------------------
    async def queue_rules(self, tenant_id: str) -> list[QueueRule]:
        q = t.queues.c
        rows = await self.conn.execute(
            select(q.id, q.name, q.channels, q.is_default, q.routing)
            .where(q.tenant_id == tenant_id)
            .order_by(q.created_at, q.id)
        )
        return [QueueRule(r.id, r.name, frozenset(r.channels), r.is_default, dict(r.routing or {})) for r in rows]

    async def lock_agents(self, tenant_id: str) -> list[AgentRow]:
        """The tenant's agents, rows locked (PostgreSQL) until the routing transaction ends."""
        a = t.agents.c
        rows = (
            await self.conn.execute(
                select(a.id, a.presence, a.capacity, a.queue_ids, a.last_assigned_at, a.skills, a.languages)
                .where(a.tenant_id == tenant_id)
                .order_by(a.id)
                .with_for_update()
            )
        ).all()
        return [
            AgentRow(
                id=r.id,
                presence=Presence(r.presence),
                capacity=dict(r.capacity),
                queue_ids=frozenset(r.queue_ids),
                last_assigned_at=r.last_assigned_at,
                skills=dict(r.skills or {}),
                languages=frozenset(r.languages or ()),
            )
            for r in rows
        ]

    async def conversation_is_open(self, tenant_id: str, conversation_id: str) -> bool:
        c = t.conversations.c
        row = await self.conn.execute(
            select(c.id).where(
                c.tenant_id == tenant_id, c.id == conversation_id, c.status == ConversationStatus.OPEN.value
            )
        )
        return row.first() is not None

    async def routing_version(self, tenant_id: str) -> int:
        """The tenant's routing version, its row locked until the transaction ends (PostgreSQL)."""
        tn = t.tenants.c
        row = (await self.conn.execute(select(tn.routing_version).where(tn.id == tenant_id).with_for_update())).first()
        return int(row.routing_version) if row else 0

    async def bump_routing_version(self, tenant_id: str) -> None:
        """Invalidate every cached routing state of the tenant (theirs at once, ours unless re-cached)."""
        tn = t.tenants.c
        await self.conn.execute(
            update(t.tenants).where(tn.id == tenant_id).values(routing_version=tn.routing_version + 1)
        )

    async def open_conversations_for_routing(self, tenant_id: str) -> list[dict[str, Any]]:
        """Every open conversation with what routing needs: channel, queue, agent, since when, tier, language."""
        c, cu, s = t.conversations.c, t.customers.c, t.assignments.c
        rows = await self.conn.execute(
            select(
                c.id,
                c.channel,
                c.queue_id,
                c.agent_id,
                func.coalesce(c.queued_at, c.opened_at).label("since"),
                cu.tier,
                cu.language,
                cu.tags,
                cu.attributes,
                s.offer_expires_at,
                s.accepted_at,
            )
            .join(t.customers, cu.id == c.customer_id)
            .outerjoin(t.assignments, (s.conversation_id == c.id) & s.ended_at.is_(None))
            .where(c.tenant_id == tenant_id, c.status == ConversationStatus.OPEN.value)
            .order_by(func.coalesce(c.queued_at, c.opened_at), c.id)
        )
        return [
            {
                "id": r.id,
                "channel": r.channel,
                "queue_id": r.queue_id,
                "agent_id": r.agent_id,
                "enqueued_at": r.since,
                "offer_expires_at": r.offer_expires_at if r.accepted_at is None else None,
                "attrs": _routing_attrs(r),
            }
            for r in rows
        ]

    async def customer_attrs(self, customer_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(set(customer_ids))
        if not ids:
            return {}
        cu = t.customers.c
        rows = await self.conn.execute(
            select(cu.id, cu.tier, cu.language, cu.tags, cu.attributes).where(cu.id.in_(ids))
        )
        return {r.id: _routing_attrs(r) for r in rows}

    async def end_assignments(self, conversation_ids: Sequence[str], now: datetime) -> None:
        """Take conversations back from their agents (agent offline, transfer): they wait in their queue again."""
        if not conversation_ids:
            return
        s, c = t.assignments.c, t.conversations.c
        await self.conn.execute(
            update(t.assignments)
            .where(s.conversation_id.in_(conversation_ids), s.ended_at.is_(None))
            .values(ended_at=now)
        )
        await self.conn.execute(
            update(t.conversations).where(c.id.in_(conversation_ids)).values(agent_id=None, assigned_at=None)
        )

    async def set_queues(self, queued: dict[str, str | None], now: datetime) -> None:
        """Where each conversation waits now (routing decided it); the first queueing time is kept, since
        the wait is the customer's, whichever queue it moves to."""
        c = t.conversations.c
        rows = [dict(b_id=cid, b_queue=qid, b_at=now) for cid, qid in queued.items() if qid is not None]
        if rows:
            await self.conn.execute(
                update(t.conversations)
                .where(c.id == bindparam("b_id"))
                .values(queue_id=bindparam("b_queue"), queued_at=func.coalesce(c.queued_at, bindparam("b_at"))),
                rows,
            )

    async def record_assignments(self, tenant_id: str, assignments: Sequence[Assignment]) -> list[dict[str, Any]]:
        """Insert the assignments and point their conversations and agents at them. Returns the stored rows
        (with their feed sequence numbers)."""
        if not assignments:
            return []
        rows = [
            dict(
                id=new_id(),
                tenant_id=tenant_id,
                conversation_id=a.conversation_id,
                agent_id=a.agent_id,
                queue_id=a.queue_id,
                channel=a.channel,
                assigned_at=a.assigned_at,
                offer_expires_at=a.offer_expires_at,
                accepted_at=None if a.offer_expires_at else a.assigned_at,
            )
            for a in assignments
        ]
        await self.conn.execute(insert(t.assignments), rows)
        c = t.conversations.c
        await self.conn.execute(
            update(t.conversations)
            .where(c.id == bindparam("b_id"))
            .values(agent_id=bindparam("b_agent"), assigned_at=bindparam("b_at")),
            [dict(b_id=a.conversation_id, b_agent=a.agent_id, b_at=a.assigned_at) for a in assignments],
        )
        latest: dict[str, datetime] = {}
        for a in assignments:
            latest[a.agent_id] = a.assigned_at
        await self.conn.execute(
            update(t.agents).where(t.agents.c.id == bindparam("b_id")).values(last_assigned_at=bindparam("b_at")),
            [dict(b_id=k, b_at=v) for k, v in latest.items()],
        )
        s = t.assignments.c
        stored = await self.conn.execute(
            select(
                s.seq,
                s.id,
                s.conversation_id,
                s.agent_id,
                s.queue_id,
                s.channel,
                s.assigned_at,
                s.offer_expires_at,
                c.customer_id,
            )
            .join(t.conversations, c.id == s.conversation_id)
            .where(s.id.in_([r["id"] for r in rows]))
        )
        out = [dict(r._mapping) for r in stored]
        await self.add_lifecycle(
            [
                Lifecycle(
                    tenant_id,
                    r["customer_id"],
                    r["conversation_id"],
                    "offered" if r["offer_expires_at"] else "assigned",
                    r["assigned_at"],
                    {"agent_id": r["agent_id"], "queue_id": r["queue_id"]},
                )
                for r in out
            ]
        )
        return out

    async def accept_offers(self, tenant_id: str, conversation_ids: Sequence[str], now: datetime) -> None:
        """Offers accepted: the live assignment stays (same row), now held for good."""
        if not conversation_ids:
            return
        s, c = t.assignments.c, t.conversations.c
        await self.conn.execute(
            update(t.assignments)
            .where(s.conversation_id.in_(conversation_ids), s.ended_at.is_(None))
            .values(accepted_at=now, offer_expires_at=None)
        )
        await self.conn.execute(update(t.conversations).where(c.id.in_(conversation_ids)).values(assigned_at=now))
        rows = await self.conn.execute(
            select(c.id, c.customer_id, c.agent_id).where(c.id.in_(conversation_ids), c.tenant_id == tenant_id)
        )
        await self.add_lifecycle(
            [Lifecycle(tenant_id, r.customer_id, r.id, "assigned", now, {"agent_id": r.agent_id}) for r in rows]
        )

    async def add_agent_events(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Append to agents' feeds; returns the rows with their feed sequence numbers, in order."""
        if not rows:
            return []
        e = t.agent_events.c
        result = await self.conn.execute(
            insert(t.agent_events).returning(e.seq, e.id, sort_by_parameter_order=True), list(rows)
        )
        seqs = {r.id: r.seq for r in result}
        return [{**row, "seq": seqs[row["id"]]} for row in rows]

    async def tenants_with_due_routing(self, now: datetime) -> list[str]:
        """Tenants with offers past their expiry: after a replica died, nobody else's timer would end them.
        (Waiting work is routed by the next event of its tenant: a message, a presence change, a resolve.)"""
        s = t.assignments.c
        rows = await self.conn.execute(
            select(s.tenant_id).where(s.ended_at.is_(None), s.offer_expires_at <= now).distinct()
        )
        return sorted({r[0] for r in rows})

    async def set_presence(self, tenant_id: str, agent_id: str, presence: Presence) -> bool:
        a = t.agents.c
        result = await self.conn.execute(
            update(t.agents).where(a.tenant_id == tenant_id, a.id == agent_id).values(presence=presence.value)
        )
        return bool(result.rowcount)

    # -- outbox ----------------------------------------------------------------------------------------
    async def add_outbox(self, records: Sequence[Outgoing], now: datetime) -> None:
        if records:
            await self.conn.execute(
                insert(t.outbox),
                [dict(topic=r.topic, key=r.key, value=r.value, created_at=now) for r in records],
            )

    async def claim_outbox(self, limit: int) -> list[tuple[int, Outgoing]]:
        """Oldest unpublished rows, locked so two relays never publish the same row at once."""
        o = t.outbox.c
        rows = await self.conn.execute(
            select(o.seq, o.topic, o.key, o.value).order_by(o.seq).limit(limit).with_for_update(skip_locked=True)
        )
        return [(r.seq, Outgoing(topic=r.topic, key=r.key, value=r.value)) for r in rows]

    async def delete_outbox(self, seqs: Sequence[int]) -> None:
        if seqs:
            await self.conn.execute(delete(t.outbox).where(t.outbox.c.seq.in_(seqs)))


def _routing_attrs(row: Any) -> dict[str, Any]:
    """What queue rules and the engine see of a customer."""
    return {
        "tier": row.tier,
        "language": row.language,
        "tags": list(row.tags or []),
        "attributes": dict(row.attributes or {}),
    }


def vars_of(row: Any) -> dict[str, Any]:
    return {k: getattr(row, k) for k in row.__dataclass_fields__}


class SqlRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[Unit]:
        async with self.db.transaction() as conn:
            unit = Unit(conn, self.db.dialect)
            yield unit
        for callback in unit._after_commit:
            callback()

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncConnection]:
        async with self.db.read() as conn:
            yield conn
