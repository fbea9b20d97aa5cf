"""The router's repository over SQLAlchemy Core: batched, set-based statements so a batch of N events costs a
fixed number of round trips, not N. The same contract suite runs it on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.adapters import tables as t
from services.router.domain.model import (
    AgentSlot,
    Assignment,
    ConversationStatus,
    Presence,
    QueueRule,
    WaitingConversation,
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


@dataclass(frozen=True, slots=True)
class OpenConversation:
    id: str
    tenant_id: str
    customer_id: str
    channel: str
    queue_id: str | None
    agent_id: str | None


@dataclass(frozen=True, slots=True)
class NewMessage:
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


class Unit:
    """One transaction's worth of repository operations."""

    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect

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

    async def create_customers(self, new: Sequence[NewCustomer], now: datetime) -> dict[IdentityKey, str]:
        """Create one customer per new identity. Safe under races: the identity's unique index decides who
        wins; a loser's customer row is removed in the same transaction and the winner's id returned."""
        if not new:
            return {}
        ids = {(n.tenant_id, n.kind, n.value): new_id() for n in new}
        await self.conn.execute(
            insert(t.customers),
            [
                dict(
                    id=ids[(n.tenant_id, n.kind, n.value)],
                    tenant_id=n.tenant_id,
                    name=n.name,
                    email=n.email,
                    phone=n.phone,
                    created_at=now,
                )
                for n in new
            ],
        )
        await self.conn.execute(
            self._insert_ignore(t.identities),
            [
                dict(
                    id=new_id(),
                    tenant_id=n.tenant_id,
                    customer_id=ids[(n.tenant_id, n.kind, n.value)],
                    kind=n.kind,
                    value=n.value,
                    verified=n.verified,
                    created_at=now,
                )
                for n in new
            ],
        )
        owners = await self.customers_by_identity(ids)
        losers = [cid for key, cid in ids.items() if owners.get(key) != cid]
        if losers:
            await self.conn.execute(delete(t.customers).where(t.customers.c.id.in_(losers)))
        return owners

    # -- conversations ---------------------------------------------------------------------------------
    async def open_conversations(self, customer_ids: Iterable[str]) -> dict[str, OpenConversation]:
        customer_ids = list(set(customer_ids))
        if not customer_ids:
            return {}
        c = t.conversations.c
        rows = await self.conn.execute(
            select(c.id, c.tenant_id, c.customer_id, c.channel, c.queue_id, c.agent_id).where(
                c.customer_id.in_(customer_ids), c.status == ConversationStatus.OPEN.value
            )
        )
        return {r.customer_id: OpenConversation(*r) for r in rows}

    async def open_missing_conversations(
        self, wanted: dict[str, tuple[str, str]], now: datetime
    ) -> dict[str, OpenConversation]:
        """``wanted``: customer id → (tenant, channel). Returns the open conversation of every customer,
        opening one where none is; the partial unique index keeps it to one even under races."""
        existing = await self.open_conversations(wanted)
        missing = {cid: v for cid, v in wanted.items() if cid not in existing}
        if missing:
            await self.conn.execute(
                self._insert_ignore(t.conversations),
                [
                    dict(
                        id=new_id(),
                        tenant_id=tenant,
                        customer_id=cid,
                        status=ConversationStatus.OPEN.value,
                        channel=channel,
                        opened_at=now,
                        last_message_at=now,
                    )
                    for cid, (tenant, channel) in missing.items()
                ],
            )
            existing.update(await self.open_conversations(missing))
        return existing

    async def touch_conversations(self, last: dict[str, tuple[str, datetime]]) -> None:
        """conversation id → (channel the customer last used, time): replies go back on that channel."""
        if not last:
            return
        c = t.conversations.c
        stmt = (
            update(t.conversations)
            .where(c.id == bindparam("b_id"))
            .values(channel=bindparam("b_channel"), last_message_at=bindparam("b_at"))
        )
        await self.conn.execute(stmt, [dict(b_id=cid, b_channel=ch, b_at=at) for cid, (ch, at) in last.items()])

    async def insert_messages(self, rows: Sequence[NewMessage], now: datetime) -> None:
        if not rows:
            return
        await self.conn.execute(
            self._insert_ignore(t.messages),
            [dict(id=new_id(), created_at=now, **vars_of(m)) for m in rows],
        )

    # -- routing state ---------------------------------------------------------------------------------
    async def queue_rules(self, tenant_id: str) -> list[QueueRule]:
        q = t.queues.c
        rows = await self.conn.execute(
            select(q.id, q.name, q.channels, q.is_default).where(q.tenant_id == tenant_id).order_by(q.created_at, q.id)
        )
        return [QueueRule(r.id, r.name, frozenset(r.channels), r.is_default) for r in rows]

    async def lock_agents(self, tenant_id: str) -> list[AgentSlot]:
        """The tenant's agents with their live load, rows locked (PostgreSQL) so that concurrent assigners
        of one tenant take turns: capacity is checked and consumed atomically."""
        a = t.agents.c
        rows = (
            await self.conn.execute(
                select(a.id, a.presence, a.capacity, a.queue_ids, a.last_assigned_at)
                .where(a.tenant_id == tenant_id)
                .order_by(a.id)
                .with_for_update()
            )
        ).all()
        s = t.assignments.c
        loads = await self.conn.execute(
            select(s.agent_id, s.channel, func.count())
            .where(s.tenant_id == tenant_id, s.ended_at.is_(None))
            .group_by(s.agent_id, s.channel)
        )
        load: dict[str, dict[str, int]] = {}
        for agent_id, channel, n in loads:
            load.setdefault(agent_id, {})[channel] = n
        return [
            AgentSlot(
                id=r.id,
                presence=Presence(r.presence),
                capacity=dict(r.capacity),
                queue_ids=frozenset(r.queue_ids),
                load=load.get(r.id, {}),
                last_assigned_at=r.last_assigned_at,
            )
            for r in rows
        ]

    async def waiting_conversations(self, tenant_id: str, limit: int = 1000) -> list[WaitingConversation]:
        c = t.conversations.c
        rows = await self.conn.execute(
            select(c.id, c.channel, c.queue_id)
            .where(c.tenant_id == tenant_id, c.status == ConversationStatus.OPEN.value, c.agent_id.is_(None))
            .order_by(func.coalesce(c.queued_at, c.opened_at), c.id)
            .limit(limit)
        )
        return [WaitingConversation(*r) for r in rows]

    async def set_queues(self, queued: dict[str, str | None], now: datetime) -> None:
        c = t.conversations.c
        rows = [dict(b_id=cid, b_queue=qid, b_at=now) for cid, qid in queued.items() if qid is not None]
        if rows:
            await self.conn.execute(
                update(t.conversations)
                .where(c.id == bindparam("b_id"), c.queue_id.is_(None))
                .values(queue_id=bindparam("b_queue"), queued_at=bindparam("b_at")),
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
            select(s.seq, s.id, s.conversation_id, s.agent_id, s.queue_id, s.channel, s.assigned_at).where(
                s.id.in_([r["id"] for r in rows])
            )
        )
        return [dict(r._mapping) for r in stored]

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


def vars_of(m: NewMessage) -> dict[str, Any]:
    return {k: getattr(m, k) for k in m.__dataclass_fields__}


class SqlRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[Unit]:
        async with self.db.transaction() as conn:
            yield Unit(conn, self.db.dialect)

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncConnection]:
        async with self.db.read() as conn:
            yield conn
