"""Object-level authorization. Tenants are isolated by every query (an id of another tenant is unknown: 404);
within a tenant, an agent sees only the conversations assigned or transferred to them (and, when
``SWITCHBOARD_AGENTS_SEE_QUEUES`` is on, those waiting in queues they serve), the customers of those
conversations, and acts only as themselves. Supervisors and admins see the whole tenant."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.exceptions import HTTPException

from services.router.adapters.db.api_keys import Principal
from services.router.adapters.views import visibility
from services.router.domain.errors import NotFound
from services.router.entrypoints.http.services import Services

T = TypeVar("T")


def acting_as(principal: Principal, agent_id: str) -> None:
    """An agent's presence, feed and offers are theirs alone (a colleague's id is known, so 403, not 404)."""
    if principal.role == "agent" and principal.agent_id != agent_id:
        raise HTTPException(403, "Agents act only as themselves.")


async def _visible(router: Services, principal: Principal, **which: str) -> bool:
    if principal.agent_id is None:
        return False
    async with router.repo.reader() as conn:
        return await visibility.agent_sees(
            conn, principal.tenant_id, principal.agent_id, queues_too=router.settings.agents_see_queues, **which
        )


async def may_see_conversation(router: Services, principal: Principal, conversation_id: str) -> None:
    if principal.role == "agent" and not await _visible(router, principal, conversation_id=conversation_id):
        raise NotFound(f"no conversation {conversation_id}")


async def may_see_customer(router: Services, principal: Principal, customer_id: str) -> None:
    if principal.role == "agent" and not await _visible(router, principal, customer_id=customer_id):
        raise NotFound(f"no customer {customer_id}")


async def read_one(
    router: Services, principal: Principal, view: Callable[[Any, str, str], Awaitable[T | None]], id_: str, what: str
) -> T:
    """The tenant's ``what`` of that id as ``view`` reads it (conn, tenant id, id), or 404 ("no <what> <id>")."""
    async with router.repo.reader() as conn:
        found = await view(conn, principal.tenant_id, id_)
    if found is None:
        raise NotFound(f"no {what} {id_}")
    return found
