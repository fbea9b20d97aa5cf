"""What the agent console and the supervisor screen read: inbox rows (customer name, last message, wait,
nearest SLA deadline) for an agent's conversations and a queue's waiting list, live SLA risks and the
duplicate-customer suggestions awaiting a decision. Read-only; scoped to the caller's tenant (another
tenant's id answers 404 exactly like an unknown one)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.exceptions import HTTPException

from services.router.adapters.views import desk, queries
from services.router.domain.errors import NotFound
from services.router.entrypoints.http.deps import RouterDep, StaffPrincipal, SupervisorPrincipal
from services.router.entrypoints.http.visibility import acting_as

router = APIRouter(tags=["desk"])


@router.get("/v1/desk/agents/{agent_id}/conversations")
async def agent_conversations(agent_id: str, router_: RouterDep, principal: StaffPrincipal) -> dict[str, Any]:
    """The conversations an agent holds now, offered or assigned, as an inbox lists them: customer name,
    channel, queue, the last message (one-line preview), how long the customer has waited for an answer
    (`waiting_s`, none when we answered last) and the nearest SLA deadline (`sla`). An agent reads their own
    only; supervisors anyone's."""
    acting_as(principal, agent_id)
    now = router_.clock()
    async with router_.repo.reader() as conn:
        if not await queries.agent_exists(conn, principal.tenant_id, agent_id):
            raise NotFound(f"no agent {agent_id}")
        items = await desk.held_by(conn, principal.tenant_id, agent_id)
        more = await desk.summaries(conn, principal.tenant_id, [i["conversation_id"] for i in items], now)
    return {"agent_id": agent_id, "items": [{**i, **more.get(i["conversation_id"], {})} for i in items]}


@router.get("/v1/desk/queues/{queue_id}/waiting")
async def queue_waiting(
    queue_id: str,
    router_: RouterDep,
    principal: StaffPrincipal,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """A queue's waiting list in the order it will be served (as `GET /v1/queues/{id}/waiting`), each row
    with what an agent needs to pick one to claim: customer name, last message, wait and nearest SLA
    deadline. An agent reads the queues they serve only (403 otherwise); unless
    `SWITCHBOARD_AGENTS_SEE_QUEUES` lets agents read waiting conversations, their rows leave out the customer's
    name and message (`redacted: true`)."""
    tenant_id = principal.tenant_id
    items = await router_.configuration.waiting(tenant_id, queue_id, limit)  # 404: unknown in this tenant
    redacted = False
    if principal.role == "agent":
        served = (await router_.configuration.agent(tenant_id, principal.agent_id)) if principal.agent_id else {}
        if queue_id not in (served.get("queue_ids") or []):
            raise HTTPException(403, "Agents read the waiting lists of the queues they serve.")
        redacted = not router_.settings.agents_see_queues
    async with router_.repo.reader() as conn:
        more = await desk.summaries(conn, tenant_id, [i["conversation_id"] for i in items], router_.clock())
    rows = []
    for item in items:
        row = {**item, **more.get(item["conversation_id"], {}), "redacted": redacted}
        if redacted:
            row.update(customer_name=None, last_message=None)
        rows.append(row)
    return {"queue_id": queue_id, "items": rows}


@router.get("/v1/desk/sla")
async def sla_risks(
    router_: RouterDep, principal: SupervisorPrincipal, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> dict[str, Any]:
    """Open conversations whose SLA is at risk now (past the warning point) or breached, most urgent first:
    the starting state the supervisors' feed (`GET /v1/supervisors/feed`) then updates live."""
    async with router_.repo.reader() as conn:
        items = await desk.sla_risks(conn, principal.tenant_id, router_.clock(), limit)
    return {"items": items}


@router.get("/v1/desk/suggestions")
async def duplicate_suggestions(
    router_: RouterDep, principal: SupervisorPrincipal, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> dict[str, Any]:
    """Pairs of customers who may be one person (an unverified claim to an identifier the other holds), one
    entry per pair still standing, newest first, with both profiles, the shared identifiers, identity and open
    conversation counts. Merge with `POST /v1/customers/{id}/merge`."""
    async with router_.repo.reader() as conn:
        items = await desk.duplicate_suggestions(conn, principal.tenant_id, limit)
    return {"items": items}
