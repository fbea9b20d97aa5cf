"""What a web-chat visitor waiting for an agent is shown: their place in the queue, the expected wait, and
when the queue opens if it is closed. Read from the store, so any replica answers, owner of the tenant's
routing or not; the place is the queue's serving order (``SqlConfiguration.waiting``, the routing facts'
virtual time), the expected wait the acknowledgement's rule of thumb (``domain/acknowledgement.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.adapters.db import tables as t
from services.router.adapters.db.configuration import SqlConfiguration
from services.router.adapters.db.routing import SqlRouting
from services.router.adapters.views.queries import of_identity
from services.router.domain.acknowledgement import expected_wait_s
from services.router.domain.model import ConversationStatus, Presence
from services.router.domain.routing.queue_config import hours_of
from shared.events import IdentityKind

NO_CONVERSATION: dict[str, Any] = {"state": "none"}
WITH_AGENT: dict[str, Any] = {"state": "with_agent"}


async def visitor_wait(conn: AsyncConnection, tenant_id: str, visitor_id: str, now: datetime) -> dict[str, Any]:
    c = t.conversations.c
    visitors = of_identity(
        select(c.id, c.queue_id, c.agent_id), c.customer_id, tenant_id, IdentityKind.CHAT_VISITOR, visitor_id
    )
    conv = (
        await conn.execute(visitors.where(c.tenant_id == tenant_id, c.status == ConversationStatus.OPEN.value))
    ).first()
    if conv is None:
        return NO_CONVERSATION
    if conv.agent_id is not None:
        return WITH_AGENT
    dialect = conn.dialect.name
    waiting = await SqlConfiguration(conn, dialect).waiting(tenant_id, conv.queue_id or "", now, limit=1_000_000)
    position = next((w["position"] for w in waiting if w["conversation_id"] == conv.id), None)
    q, a = t.queues.c, t.agents.c
    routing = (await conn.execute(select(q.routing).where(q.tenant_id == tenant_id, q.id == conv.queue_id))).scalar()
    hours = hours_of(routing or {})
    is_open = hours is None or hours.is_open(now)
    online = sum(
        conv.queue_id in (r.queue_ids or [])
        for r in await conn.execute(
            select(a.queue_ids).where(a.tenant_id == tenant_id, a.presence == Presence.ONLINE.value)
        )
    )
    handle_s = (await SqlRouting(conn, dialect).average_handle_s([tenant_id])).get(tenant_id) if online else None
    wait = expected_wait_s(position, online, handle_s) if position is not None and is_open else None
    opens_at = None if is_open or hours is None else hours.next_open(now)
    return {
        "state": "waiting",
        "position": position,  # None: not in a queue yet (routing has not placed it)
        "waiting": len(waiting),
        "expected_wait_s": None if wait is None else round(wait),
        "queue_open": is_open,
        "opens_at": opens_at,
    }
