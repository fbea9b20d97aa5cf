"""Read models for the API: what was stored, always filtered by tenant (a foreign id reads as unknown)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.adapters import tables as t


def _row(r: Any) -> dict[str, Any]:
    return dict(r._mapping)


async def customer(conn: AsyncConnection, tenant_id: str, customer_id: str) -> dict[str, Any] | None:
    c = t.customers.c
    row = (
        await conn.execute(
            select(c.id, c.name, c.email, c.phone, c.created_at).where(c.tenant_id == tenant_id, c.id == customer_id)
        )
    ).first()
    if row is None:
        return None
    i = t.identities.c
    ids = await conn.execute(
        select(i.kind, i.value, i.verified, i.created_at).where(i.customer_id == customer_id).order_by(i.created_at)
    )
    return {**_row(row), "identities": [_row(r) for r in ids]}


async def conversation(conn: AsyncConnection, tenant_id: str, conversation_id: str) -> dict[str, Any] | None:
    c = t.conversations.c
    row = (
        await conn.execute(
            select(
                c.id,
                c.customer_id,
                c.status,
                c.channel,
                c.queue_id,
                c.agent_id,
                c.opened_at,
                c.queued_at,
                c.assigned_at,
                c.last_message_at,
            ).where(c.tenant_id == tenant_id, c.id == conversation_id)
        )
    ).first()
    if row is None:
        return None
    m = t.messages.c
    msgs = await conn.execute(
        select(
            m.id,
            m.event_id,
            m.channel,
            m.direction,
            m.channel_message_id,
            m.subject,
            m.text,
            m.sent_at,
            m.received_at,
        )
        .where(m.conversation_id == conversation_id)
        .order_by(m.seq)
    )
    return {**_row(row), "messages": [_row(r) for r in msgs]}


async def agent_exists(conn: AsyncConnection, tenant_id: str, agent_id: str) -> bool:
    a = t.agents.c
    row = (await conn.execute(select(a.id).where(a.tenant_id == tenant_id, a.id == agent_id))).first()
    return row is not None


async def agents(conn: AsyncConnection, tenant_id: str) -> list[dict[str, Any]]:
    a = t.agents.c
    rows = await conn.execute(
        select(a.id, a.name, a.presence, a.capacity, a.queue_ids).where(a.tenant_id == tenant_id).order_by(a.name)
    )
    return [_row(r) for r in rows]


async def queues(conn: AsyncConnection, tenant_id: str) -> list[dict[str, Any]]:
    q = t.queues.c
    rows = await conn.execute(
        select(q.id, q.name, q.channels, q.is_default).where(q.tenant_id == tenant_id).order_by(q.name)
    )
    return [_row(r) for r in rows]


async def assignments_after(
    conn: AsyncConnection, tenant_id: str, agent_id: str, after_seq: int | None, limit: int = 500
) -> list[dict[str, Any]]:
    """What a console must see on (re)connecting: after a feed position (Last-Event-ID), everything it
    missed; on a first connection (None), the agent's live assignments, i.e. its current workload."""
    s = t.assignments.c
    where = [s.tenant_id == tenant_id, s.agent_id == agent_id]
    where.append(s.ended_at.is_(None) if after_seq is None else s.seq > after_seq)
    rows = await conn.execute(
        select(s.seq, s.id, s.conversation_id, s.agent_id, s.queue_id, s.channel, s.assigned_at)
        .where(*where)
        .order_by(s.seq)
        .limit(limit)
    )
    return [_row(r) for r in rows]
