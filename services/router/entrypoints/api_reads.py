"""Reading back what was stored: conversations, customers, agents, queues. Scoped to the caller's tenant;
another tenant's id answers 404 exactly like an unknown one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.router.adapters import queries
from services.router.domain.errors import NotFound
from services.router.entrypoints.deps import RouterDep, StaffPrincipal

router = APIRouter(tags=["context"])


@router.get("/v1/conversations/{conversation_id}")
async def get_conversation(conversation_id: str, router_: RouterDep, principal: StaffPrincipal) -> dict[str, Any]:
    async with router_.repo.reader() as conn:
        found = await queries.conversation(conn, principal.tenant_id, conversation_id)
    if found is None:
        raise NotFound(f"no conversation {conversation_id}")
    return found


@router.get("/v1/customers/{customer_id}")
async def get_customer(customer_id: str, router_: RouterDep, principal: StaffPrincipal) -> dict[str, Any]:
    async with router_.repo.reader() as conn:
        found = await queries.customer(conn, principal.tenant_id, customer_id)
    if found is None:
        raise NotFound(f"no customer {customer_id}")
    return found


@router.get("/v1/agents", tags=["agents"])
async def list_agents(router_: RouterDep, principal: StaffPrincipal) -> list[dict[str, Any]]:
    async with router_.repo.reader() as conn:
        return await queries.agents(conn, principal.tenant_id)


@router.get("/v1/queues", tags=["queues"])
async def list_queues(router_: RouterDep, principal: StaffPrincipal) -> list[dict[str, Any]]:
    async with router_.repo.reader() as conn:
        return await queries.queues(conn, principal.tenant_id)
