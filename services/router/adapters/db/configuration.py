"""Queues and agents as supervisors manage them (the routing configuration), tenant-scoped."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.adapters.db import tables as t
from services.router.adapters.db.unit_of_work import new_id
from services.router.domain.errors import InvalidCommand, NotFound
from services.router.domain.model import ConversationStatus

QUEUE_FIELDS = ("id", "name", "channels", "is_default", "routing", "created_at")
AGENT_FIELDS = (
    "id",
    "name",
    "presence",
    "capacity",
    "queue_ids",
    "skills",
    "languages",
    "voice_endpoint",
    "last_assigned_at",
    "created_at",
)


async def _invalidate_routing(conn: AsyncConnection, tenant_id: str) -> None:
    """Configuration changed: every router rebuilds this tenant's routing state before its next decision."""
    tn = t.tenants.c
    await conn.execute(update(t.tenants).where(tn.id == tenant_id).values(routing_version=tn.routing_version + 1))


async def _check_overflow(conn: AsyncConnection, tenant_id: str, values: dict[str, Any]) -> None:
    routing = values.get("routing") or {}
    sla = routing.get("sla") or {}
    targets = [routing.get("overflow_to")] + [
        (sla.get(f"on_{s}") or {}).get("escalate_to") for s in ("warning", "breach")
    ]
    if any(targets):
        await _check_queues(conn, tenant_id, [q for q in targets if q])


async def get_queue(conn: AsyncConnection, tenant_id: str, queue_id: str) -> dict[str, Any]:
    q = t.queues.c
    row = (
        await conn.execute(select(*(q[f] for f in QUEUE_FIELDS)).where(q.tenant_id == tenant_id, q.id == queue_id))
    ).first()
    if row is None:
        raise NotFound(f"no queue {queue_id}")
    return dict(row._mapping)


async def create_queue(conn: AsyncConnection, tenant_id: str, values: dict[str, Any], now: datetime) -> str:
    await _check_overflow(conn, tenant_id, values)
    queue_id = new_id()
    if values.get("is_default"):
        await conn.execute(update(t.queues).where(t.queues.c.tenant_id == tenant_id).values(is_default=False))
    try:
        await conn.execute(insert(t.queues).values(id=queue_id, tenant_id=tenant_id, created_at=now, **values))
    except IntegrityError as exc:
        raise InvalidCommand(f"a queue named {values['name']!r} exists") from exc
    await _invalidate_routing(conn, tenant_id)
    return queue_id


async def update_queue(conn: AsyncConnection, tenant_id: str, queue_id: str, values: dict[str, Any]) -> None:
    await get_queue(conn, tenant_id, queue_id)
    await _check_overflow(conn, tenant_id, values)
    if values.get("is_default"):
        await conn.execute(update(t.queues).where(t.queues.c.tenant_id == tenant_id).values(is_default=False))
    if values:
        try:
            await conn.execute(update(t.queues).where(t.queues.c.id == queue_id).values(**values))
        except IntegrityError as exc:
            raise InvalidCommand("another queue has that name") from exc
    await _invalidate_routing(conn, tenant_id)


async def delete_queue(conn: AsyncConnection, tenant_id: str, queue_id: str) -> None:
    await get_queue(conn, tenant_id, queue_id)
    c = t.conversations.c
    open_here = (
        await conn.execute(
            select(func.count()).where(c.queue_id == queue_id, c.status == ConversationStatus.OPEN.value)
        )
    ).scalar_one()
    if open_here:
        raise InvalidCommand(f"{open_here} open conversations are in this queue; transfer them first")
    await conn.execute(delete(t.queues).where(t.queues.c.id == queue_id))
    await _invalidate_routing(conn, tenant_id)


async def waiting(
    conn: AsyncConnection, tenant_id: str, queue_id: str, now: datetime, limit: int
) -> list[dict[str, Any]]:
    """The queue as a supervisor sees it: who waits, in the order they will be served, and for how long."""
    await get_queue(conn, tenant_id, queue_id)
    c = t.conversations.c
    rows = await conn.execute(
        select(c.id, c.customer_id, c.channel, c.queued_at, c.opened_at)
        .where(
            c.tenant_id == tenant_id,
            c.queue_id == queue_id,
            c.status == ConversationStatus.OPEN.value,
            c.agent_id.is_(None),
        )
        .order_by(func.coalesce(c.queued_at, c.opened_at), c.id)
        .limit(limit)
    )
    out = []
    for position, r in enumerate(rows, start=1):
        since = r.queued_at or r.opened_at
        out.append(
            {
                "position": position,
                "conversation_id": r.id,
                "customer_id": r.customer_id,
                "channel": r.channel,
                "queued_at": since,
                "waiting_s": round(max(0.0, (now - since).total_seconds()), 1),
            }
        )
    return out


async def get_agent(conn: AsyncConnection, tenant_id: str, agent_id: str) -> dict[str, Any]:
    a = t.agents.c
    row = (
        await conn.execute(select(*(a[f] for f in AGENT_FIELDS)).where(a.tenant_id == tenant_id, a.id == agent_id))
    ).first()
    if row is None:
        raise NotFound(f"no agent {agent_id}")
    return dict(row._mapping)


async def _check_queues(conn: AsyncConnection, tenant_id: str, queue_ids: list[str]) -> None:
    q = t.queues.c
    known = {r.id for r in await conn.execute(select(q.id).where(q.tenant_id == tenant_id, q.id.in_(queue_ids)))}
    missing = sorted(set(queue_ids) - known)
    if missing:
        raise InvalidCommand(f"unknown queues: {', '.join(missing)}")


async def create_agent(conn: AsyncConnection, tenant_id: str, values: dict[str, Any], now: datetime) -> str:
    await _check_queues(conn, tenant_id, values["queue_ids"])
    agent_id = new_id()
    await conn.execute(insert(t.agents).values(id=agent_id, tenant_id=tenant_id, created_at=now, **values))
    await _invalidate_routing(conn, tenant_id)
    return agent_id


async def update_agent(conn: AsyncConnection, tenant_id: str, agent_id: str, values: dict[str, Any]) -> None:
    await get_agent(conn, tenant_id, agent_id)
    if "queue_ids" in values:
        await _check_queues(conn, tenant_id, values["queue_ids"])
    if values:
        await conn.execute(update(t.agents).where(t.agents.c.id == agent_id).values(**values))
    await _invalidate_routing(conn, tenant_id)


async def delete_agent(conn: AsyncConnection, tenant_id: str, agent_id: str) -> None:
    await get_agent(conn, tenant_id, agent_id)
    s = t.assignments.c
    live = (await conn.execute(select(func.count()).where(s.agent_id == agent_id, s.ended_at.is_(None)))).scalar_one()
    if live:
        raise InvalidCommand(f"the agent still holds {live} conversations; transfer or resolve them first")
    # past assignments keep their history: the agent row stays referenced, so it is retired, not deleted
    ended = (await conn.execute(select(func.count()).where(s.agent_id == agent_id))).scalar_one()
    if ended:
        await conn.execute(update(t.agents).where(t.agents.c.id == agent_id).values(presence="offline", queue_ids=[]))
    else:
        await conn.execute(delete(t.agents).where(t.agents.c.id == agent_id))
    await _invalidate_routing(conn, tenant_id)
