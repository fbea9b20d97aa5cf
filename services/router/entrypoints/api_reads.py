"""Conversations, agents and queues. Scoped to the caller's tenant;
another tenant's id answers 404 exactly like an unknown one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

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


class ResolveIn(BaseModel):
    note: Annotated[str, Field(max_length=10_000, description="The documented resolution.")] | None = None


@router.post("/v1/conversations/{conversation_id}/resolve", status_code=204)
async def resolve_conversation(
    conversation_id: str, router_: RouterDep, principal: StaffPrincipal, body: ResolveIn | None = None
) -> None:
    """Resolve: the agent's capacity is freed at once; a customer who writes again within the reopen window
    (SWITCHBOARD_REOPEN_WINDOW_HOURS) reopens it, later a new conversation starts, linked to this one."""
    await router_.commands.resolve(principal.tenant_id, conversation_id, body.note if body else None)


@router.get("/v1/agents", tags=["agents"])
async def list_agents(router_: RouterDep, principal: StaffPrincipal) -> list[dict[str, Any]]:
    async with router_.repo.reader() as conn:
        return await queries.agents(conn, principal.tenant_id)


@router.get("/v1/queues", tags=["queues"])
async def list_queues(router_: RouterDep, principal: StaffPrincipal) -> list[dict[str, Any]]:
    async with router_.repo.reader() as conn:
        return await queries.queues(conn, principal.tenant_id)
