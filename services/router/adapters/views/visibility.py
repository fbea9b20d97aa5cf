"""What an agent may see within their tenant: the conversations assigned or transferred to them (and, when
``SWITCHBOARD_AGENTS_SEE_QUEUES`` is on, those waiting in queues they serve), and those conversations'
customers."""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.adapters.db import tables as t

c, a = t.conversations.c, t.assignments.c


async def agent_sees(
    conn: AsyncConnection,
    tenant_id: str,
    agent_id: str,
    *,
    queues_too: bool,
    conversation_id: str | None = None,
    customer_id: str | None = None,
) -> bool:
    """Some conversation (this one, or one of this customer's) is the agent's: held, once held, or waiting in
    a queue they serve."""
    mine: list[ColumnElement[bool]] = [
        c.agent_id == agent_id,
        exists().where(a.tenant_id == c.tenant_id, a.conversation_id == c.id, a.agent_id == agent_id),
    ]
    if queues_too:
        ag = t.agents.c
        served = (await conn.execute(select(ag.queue_ids).where(ag.tenant_id == tenant_id, ag.id == agent_id))).first()
        if served is not None and served.queue_ids:
            mine.append(c.agent_id.is_(None) & c.queue_id.in_(list(served.queue_ids)))
    match = c.id == conversation_id if conversation_id is not None else c.customer_id == customer_id
    query = select(c.id).where(c.tenant_id == tenant_id, match, or_(*mine)).limit(1)
    return (await conn.execute(query)).first() is not None
