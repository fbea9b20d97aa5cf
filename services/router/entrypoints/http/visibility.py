"""Object-level authorization. Tenants are isolated by every query (an id of another tenant is unknown: 404);
within a tenant, an agent sees only the conversations assigned or transferred to them (and, when
``SWITCHBOARD_AGENTS_SEE_QUEUES`` is on, those waiting in queues they serve), the customers of those
conversations, and acts only as themselves. Supervisors and admins see the whole tenant."""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.exceptions import HTTPException

from services.router.adapters.db import tables as t
from services.router.adapters.db.api_keys import Principal
from services.router.bootstrap import Router
from services.router.domain.errors import NotFound


def acting_as(principal: Principal, agent_id: str) -> None:
    """An agent's presence, feed and offers are theirs alone (a colleague's id is known, so 403, not 404)."""
    if principal.role == "agent" and principal.agent_id != agent_id:
        raise HTTPException(403, "Agents act only as themselves.")


async def _visible_to_agent(conn: AsyncConnection, principal: Principal, queues_too: bool) -> ColumnElement[bool]:
    c, a = t.conversations.c, t.assignments.c
    mine = [
        c.agent_id == principal.agent_id,
        exists().where(a.conversation_id == c.id, a.agent_id == principal.agent_id),
    ]
    if queues_too:
        served = (await conn.execute(select(t.agents.c.queue_ids).where(t.agents.c.id == principal.agent_id))).first()
        if served is not None and served.queue_ids:
            mine.append(c.agent_id.is_(None) & c.queue_id.in_(list(served.queue_ids)))
    return or_(*mine)


async def _visible(router: Router, principal: Principal, match: ColumnElement[bool]) -> bool:
    """Some conversation matching ``match`` is the agent's (held, once held, or waiting in a queue they serve)."""
    if principal.agent_id is None:
        return False
    c = t.conversations.c
    async with router.repo.reader() as conn:
        visible = await _visible_to_agent(conn, principal, router.settings.agents_see_queues)
        query = select(c.id).where(c.tenant_id == principal.tenant_id, match, visible).limit(1)
        return (await conn.execute(query)).first() is not None


async def may_see_conversation(router: Router, principal: Principal, conversation_id: str) -> None:
    c = t.conversations.c
    if principal.role == "agent" and not await _visible(router, principal, c.id == conversation_id):
        raise NotFound(f"no conversation {conversation_id}")


async def may_see_customer(router: Router, principal: Principal, customer_id: str) -> None:
    c = t.conversations.c
    if principal.role == "agent" and not await _visible(router, principal, c.customer_id == customer_id):
        raise NotFound(f"no customer {customer_id}")
