"""Agents: presence, and the live feed of their assignments as Server-Sent Events.

SSE (WHATWG HTML §9.2): each event carries ``id: <seq>``; a console that reconnects sends Last-Event-ID and
gets what it missed from the database before live events resume, each exactly once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header
from pydantic import BaseModel
from sse_starlette import EventSourceResponse, ServerSentEvent

from services.router.adapters import queries
from services.router.domain.errors import NotFound
from services.router.domain.model import Presence
from services.router.entrypoints.deps import RouterDep, StaffPrincipal
from services.router.handlers import assignment_event

router = APIRouter(tags=["agents"])


class PresenceIn(BaseModel):
    presence: Presence


class PresenceOut(BaseModel):
    agent_id: str
    presence: Presence
    assigned: int


@router.put("/v1/agents/{agent_id}/presence", response_model=PresenceOut)
async def put_presence(agent_id: str, body: PresenceIn, router_: RouterDep, principal: StaffPrincipal) -> PresenceOut:
    assigned = await router_.commands.set_presence(principal.tenant_id, agent_id, body.presence)
    return PresenceOut(agent_id=agent_id, presence=body.presence, assigned=assigned)


@router.get(
    "/v1/agents/{agent_id}/feed",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def agent_feed(
    agent_id: str,
    router_: RouterDep,
    principal: StaffPrincipal,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventSourceResponse:
    tenant_id = principal.tenant_id
    async with router_.repo.reader() as conn:
        if not await queries.agent_exists(conn, tenant_id, agent_id):
            raise NotFound(f"no agent {agent_id}")
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else None

    async def stream() -> AsyncIterator[ServerSentEvent]:
        # Subscribe before reading the backlog, then drop live events already replayed: no gap, no repeat.
        with router_.hub.subscribe(tenant_id, agent_id) as live:
            async with router_.repo.reader() as conn:
                backlog = await queries.assignments_after(conn, tenant_id, agent_id, after)
            sent = after or 0
            for row in backlog:
                event = orjson.loads(assignment_event(router_.topics.assignments, tenant_id, row).value)
                sent = max(sent, event["seq"])
                yield _sse(event)
            while True:
                item = await live.get()
                if item is None:
                    return  # fell behind: the client reconnects with Last-Event-ID
                if item["seq"] <= sent:
                    continue
                sent = item["seq"]
                yield _sse(item)

    return EventSourceResponse(stream(), ping=int(router_.settings.feed_keepalive_s))


def _sse(event: dict[str, Any]) -> ServerSentEvent:
    return ServerSentEvent(data=orjson.dumps(event).decode(), event=event["type"], id=str(event["seq"]))
