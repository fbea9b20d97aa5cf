"""Supervisors manage queues and agents; everyone on the desk can see the queue."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from services.router.adapters import admin
from services.router.adapters.api_keys import Principal
from services.router.domain.model import DEFAULT_CAPACITY, Presence
from services.router.entrypoints.deps import RouterDep, StaffPrincipal, require
from shared.events import Channel

router = APIRouter()
SupervisorPrincipal = Annotated[Principal, require("supervisor", "admin")]
Name = Annotated[str, Field(min_length=1, max_length=128)]


class QueueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    channels: Annotated[list[Channel], Field(max_length=20)] = Field(
        default_factory=list, description="Channels this queue takes; the default queue takes the rest."
    )
    is_default: bool = False


class QueuePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    channels: Annotated[list[Channel], Field(max_length=20)] | None = None
    is_default: bool | None = None


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=256)]
    queue_ids: Annotated[list[str], Field(max_length=100)] = Field(default_factory=list)
    capacity: dict[str, Annotated[int, Field(ge=0, le=1000)]] = Field(
        default_factory=lambda: dict(DEFAULT_CAPACITY),
        description='Conversations at once per channel, "default" for the others: {"default": 3, "email": 5}.',
    )
    presence: Presence = Presence.OFFLINE


class AgentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    queue_ids: Annotated[list[str], Field(max_length=100)] | None = None
    capacity: dict[str, Annotated[int, Field(ge=0, le=1000)]] | None = None


def _values(body: BaseModel) -> dict[str, Any]:
    return {k: ([c.value for c in v] if k == "channels" else v) for k, v in body.model_dump(exclude_none=True).items()}


@router.post("/v1/queues", status_code=201, tags=["queues"])
async def create_queue(body: QueueIn, router_: RouterDep, principal: SupervisorPrincipal) -> dict[str, Any]:
    async with router_.db.transaction() as conn:
        queue_id = await admin.create_queue(conn, principal.tenant_id, _values(body), router_.clock())
        return await admin.get_queue(conn, principal.tenant_id, queue_id)


@router.get("/v1/queues/{queue_id}", tags=["queues"])
async def get_queue(queue_id: str, router_: RouterDep, principal: StaffPrincipal) -> dict[str, Any]:
    async with router_.repo.reader() as conn:
        return await admin.get_queue(conn, principal.tenant_id, queue_id)


@router.patch("/v1/queues/{queue_id}", tags=["queues"])
async def patch_queue(
    queue_id: str, body: QueuePatch, router_: RouterDep, principal: SupervisorPrincipal
) -> dict[str, Any]:
    async with router_.db.transaction() as conn:
        await admin.update_queue(conn, principal.tenant_id, queue_id, _values(body))
        return await admin.get_queue(conn, principal.tenant_id, queue_id)


@router.delete("/v1/queues/{queue_id}", status_code=204, tags=["queues"])
async def delete_queue(queue_id: str, router_: RouterDep, principal: SupervisorPrincipal) -> Response:
    async with router_.db.transaction() as conn:
        await admin.delete_queue(conn, principal.tenant_id, queue_id)
    return Response(status_code=204)


@router.get("/v1/queues/{queue_id}/waiting", tags=["queues"])
async def queue_waiting(
    queue_id: str, router_: RouterDep, principal: StaffPrincipal, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> dict[str, Any]:
    """Waiting conversations in the order they will be served, with position and wait so far."""
    async with router_.repo.reader() as conn:
        items = await admin.waiting(conn, principal.tenant_id, queue_id, router_.clock(), limit)
    return {"queue_id": queue_id, "items": items}


@router.post("/v1/agents", status_code=201, tags=["agents"])
async def create_agent(body: AgentIn, router_: RouterDep, principal: SupervisorPrincipal) -> dict[str, Any]:
    async with router_.db.transaction() as conn:
        agent_id = await admin.create_agent(conn, principal.tenant_id, _values(body), router_.clock())
        return await admin.get_agent(conn, principal.tenant_id, agent_id)


@router.get("/v1/agents/{agent_id}", tags=["agents"])
async def get_agent(agent_id: str, router_: RouterDep, principal: StaffPrincipal) -> dict[str, Any]:
    async with router_.repo.reader() as conn:
        return await admin.get_agent(conn, principal.tenant_id, agent_id)


@router.patch("/v1/agents/{agent_id}", tags=["agents"])
async def patch_agent(
    agent_id: str, body: AgentPatch, router_: RouterDep, principal: SupervisorPrincipal
) -> dict[str, Any]:
    """Name, queues and capacity. Presence has its own endpoint (it routes waiting work)."""
    async with router_.db.transaction() as conn:
        await admin.update_agent(conn, principal.tenant_id, agent_id, _values(body))
        return await admin.get_agent(conn, principal.tenant_id, agent_id)


@router.delete("/v1/agents/{agent_id}", status_code=204, tags=["agents"])
async def delete_agent(agent_id: str, router_: RouterDep, principal: SupervisorPrincipal) -> Response:
    async with router_.db.transaction() as conn:
        await admin.delete_agent(conn, principal.tenant_id, agent_id)
    return Response(status_code=204)
