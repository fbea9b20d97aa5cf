"""Agents: presence, and the live feed of their assignments as Server-Sent Events.

SSE (WHATWG HTML §9.2): each event carries ``id: <seq>``; a console that reconnects sends Last-Event-ID and
gets what it missed from the database before live events resume, each exactly once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict
from sse_starlette import EventSourceResponse, ServerSentEvent

from services.router.adapters.db.api_keys import Principal
from services.router.adapters.views import queries
from services.router.domain.errors import NotFound
from services.router.domain.model import Presence
from services.router.entrypoints.http.deps import (
    STAFF_ROLES,
    IdempotencyKey,
    RouterDep,
    StaffPrincipal,
    SupervisorPrincipal,
    authenticate,
)
from services.router.entrypoints.http.services import Services
from services.router.entrypoints.http.visibility import acting_as
from services.router.handlers.agent_feed import SUPERVISORS, feed_event
from shared.routing_commands import Accept, Claim, Decline, Ref, SetPresence

router = APIRouter(tags=["agents"])
# What the OpenAPI says a feed answers: a stream, not the JSON body a response class would otherwise imply.
SSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}
}


class PresenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    presence: Presence


class PresenceOut(BaseModel):
    agent_id: str
    presence: Presence
    assigned: int


@router.put("/v1/agents/{agent_id}/presence", response_model=PresenceOut)
async def put_presence(
    agent_id: str, body: PresenceIn, router_: RouterDep, principal: StaffPrincipal, key: IdempotencyKey = None
) -> PresenceOut:
    """Set an agent's presence (online, away, offline); an agent sets their own, a supervisor anyone's. Going
    online routes waiting work to them at once (`assigned` counts it); going away hands open offers on."""
    acting_as(principal, agent_id)
    reason = "agent" if principal.agent_id == agent_id else "supervisor"
    assigned = await router_.commands.run(
        principal.tenant_id, SetPresence(agent_id=agent_id, presence=body.presence.value, reason=reason), key
    )
    return PresenceOut(agent_id=agent_id, presence=body.presence, assigned=assigned)


@router.get("/v1/agents/{agent_id}/feed", response_class=EventSourceResponse, responses=SSE)
async def agent_feed(
    agent_id: str,
    router_: RouterDep,
    principal: StaffPrincipal,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventSourceResponse:
    """The agent's live feed as Server-Sent Events: offers, assignments, unassignments, new messages, presence.
    Each event has an `id`; reconnect with `Last-Event-ID` to get what was missed, each event exactly once.
    Browsers' EventSource may authenticate with `?access_token=`. The agent's own connection counts as them
    being at their desk."""
    acting_as(principal, agent_id)
    tenant_id = principal.tenant_id
    async with router_.repo.reader() as conn:
        if not await queries.agent_exists(conn, tenant_id, agent_id):
            raise NotFound(f"no agent {agent_id}")
    return _sse(router_, tenant_id, agent_id, last_event_id, connected=principal.agent_id == agent_id)


def _sse(
    router_: Services, tenant_id: str, feed: str, last_event_id: str | None, *, connected: bool = False
) -> EventSourceResponse:
    """A feed as Server-Sent Events: ``id`` is the feed position a reconnect resumes from (Last-Event-ID).
    ``connected``: the agent's own console (their own credentials), whose connection tells their presence; a
    supervisor watching an agent's feed is not that agent at their desk."""
    after = _position(last_event_id)

    async def stream() -> AsyncIterator[ServerSentEvent]:
        async with _connection(router_, tenant_id, feed, "sse", connected):
            async for event in feed_events(router_, tenant_id, feed, after):
                yield ServerSentEvent(data=orjson.dumps(event).decode(), event=event["type"], id=str(event["seq"]))

    return EventSourceResponse(stream(), ping=int(router_.settings.feed_keepalive_s))


@contextlib.asynccontextmanager
async def _connection(
    router_: Services, tenant_id: str, agent_id: str, kind: str, connected: bool
) -> AsyncIterator[None]:
    """While the block runs the agent has a live connection here (``handlers/presence.py``)."""
    if not connected:
        yield
        return
    connection_id = await router_.presence.opened(tenant_id, agent_id, kind)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # a close that fails is a connection that goes stale: same outcome
            await asyncio.shield(router_.presence.closed(tenant_id, connection_id))


@router.websocket("/v1/agents/{agent_id}/feed/ws")
async def agent_feed_ws(
    websocket: WebSocket,
    agent_id: str,
    access_token: str | None = None,
    last_event_id: str | None = None,
) -> None:
    """The same feed over a WebSocket: one JSON frame per event, ``{"id", "event", "data"}``. Authenticate
    with ``Authorization: Bearer`` or ``?access_token=``; resume with ``?last_event_id=`` (the last ``id`` seen).
    Refusals close the socket with 4401 (credentials), 4403 (role) or 4404 (unknown agent)."""
    router_: Services = websocket.app.state.router
    await websocket.accept()
    header = websocket.headers.get("authorization", "")
    token = header.partition(" ")[2].strip() if header.lower().startswith("bearer ") else access_token
    principal = await authenticate(router_, token) if token else None
    if principal is None:
        await websocket.close(code=4401, reason="missing or unknown credentials")
        return
    if principal.role not in STAFF_ROLES or (principal.role == "agent" and principal.agent_id != agent_id):
        await websocket.close(code=4403, reason="an agent's feed is for that agent, supervisors and admins")
        return
    async with router_.repo.reader() as conn:
        if not await queries.agent_exists(conn, principal.tenant_id, agent_id):
            await websocket.close(code=4404, reason="no such agent")
            return
    after = _position(last_event_id)
    async with _connection(router_, principal.tenant_id, agent_id, "websocket", principal.agent_id == agent_id):
        await _send_feed(websocket, feed_events(router_, principal.tenant_id, agent_id, after))


async def _send_feed(websocket: WebSocket, events: AsyncGenerator[dict[str, Any], None]) -> None:
    closed = asyncio.create_task(_until_closed(websocket))
    try:
        while True:
            nxt = asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait({nxt, closed}, return_when=asyncio.FIRST_COMPLETED)
            if closed in done:
                nxt.cancel()
                return
            event = nxt.result()
            await websocket.send_text(
                orjson.dumps({"id": event["seq"], "event": event["type"], "data": event}).decode()
            )
    except (StopAsyncIteration, WebSocketDisconnect):
        return
    finally:
        closed.cancel()
        await events.aclose()


async def _until_closed(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()  # the client sends nothing; this notices it leaving


async def feed_events(
    router_: Services, tenant_id: str, agent_id: str, after: int | None
) -> AsyncGenerator[dict[str, Any], None]:
    """An agent's feed: what it missed since ``after`` (or, on a first connection, its current workload) from
    the database, then live events. Subscribing before reading the backlog and dropping live events already
    replayed leaves no gap and no repeat."""
    with router_.hub.subscribe(tenant_id, agent_id) as live:
        sent = after or 0
        cursor = after
        while True:
            async with router_.repo.reader() as conn:
                backlog = await queries.feed_after(conn, tenant_id, agent_id, cursor, limit=_PAGE)
            for row in backlog:
                if row["seq"] <= sent:
                    continue
                sent = row["seq"]
                yield orjson.loads(orjson.dumps(feed_event(tenant_id, row)))
            if cursor is None or len(backlog) < _PAGE:
                break
            cursor = sent
        while True:
            item = await live.get()
            if item is None:
                return  # fell behind: the client reconnects with its last event id
            if item["seq"] <= sent:
                continue
            sent = item["seq"]
            yield item


_PAGE = 500


@router.get("/v1/supervisors/feed", response_class=EventSourceResponse, responses=SSE)
async def supervisors_feed(
    router_: RouterDep,
    principal: SupervisorPrincipal,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventSourceResponse:
    """The desk-wide feed for supervisors: SLA warnings and breaches (``sla.warning``, ``sla.breach``), with
    resume by Last-Event-ID like an agent's feed."""
    return _sse(router_, principal.tenant_id, SUPERVISORS, last_event_id)


class OfferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conversation_id: Ref


class OfferOut(BaseModel):
    agent_id: str
    conversation_id: str
    events: int


def _agents_move(move: type[Accept | Decline | Claim], path: str, name: str, description: str) -> None:
    """One of an agent's moves on a conversation as a route; all take the same body and give the same answer."""

    async def route(
        agent_id: str, body: OfferIn, router_: RouterDep, principal: StaffPrincipal, key: IdempotencyKey = None
    ) -> OfferOut:
        return await _agents_own(router_, principal, move(agent_id=agent_id, conversation_id=body.conversation_id), key)

    router.post(f"/v1/agents/{{agent_id}}/{path}", response_model=OfferOut, name=name, description=description)(route)


_agents_move(Accept, "accept", "accept_offer", "Accept a conversation offered to this agent (it becomes theirs).")
_agents_move(
    Decline,
    "decline",
    "decline_offer",
    "Decline an offer: it goes to the next eligible agent; after the queue's max_declines it escalates.",
)
_agents_move(Claim, "claim", "claim", "Manual pull: take a waiting conversation from a queue this agent serves.")


async def _agents_own(
    router_: Services, principal: Principal, move: Accept | Decline | Claim, key: str | None
) -> OfferOut:
    acting_as(principal, move.agent_id)
    events = await router_.commands.run(principal.tenant_id, move, key)
    return OfferOut(agent_id=move.agent_id, conversation_id=move.conversation_id, events=events)


def _position(last_event_id: str | None) -> int | None:
    """A feed position from a client (Last-Event-ID): a plain, bounded integer, or none."""
    if last_event_id and last_event_id.isascii() and last_event_id.isdigit() and len(last_event_id) <= 18:
        return int(last_event_id)
    return None
