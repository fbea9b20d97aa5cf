"""Conversations, agents and queues. Scoped to the caller's tenant;
another tenant's id answers 404 exactly like an unknown one."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from services.router.adapters.views import queries
from services.router.domain.errors import InvalidCommand
from services.router.entrypoints.http.deps import IdempotencyKey, RouterDep, StaffPrincipal
from services.router.entrypoints.http.visibility import may_see_conversation, read_one
from shared.events import Channel
from shared.outbound import WhatsAppTemplate
from shared.routing_commands import Resolve, Transfer

router = APIRouter(tags=["context"])


@router.get("/v1/conversations/{conversation_id}")
async def get_conversation(conversation_id: str, router_: RouterDep, principal: StaffPrincipal) -> dict[str, Any]:
    """A conversation with its customer, channel, status, queue, assigned agent, SLA clocks and every message
    (with each reply's delivery status). An agent sees only the conversations assigned or transferred to them."""
    await may_see_conversation(router_, principal, conversation_id)
    return await read_one(router_, principal, queries.conversation, conversation_id, "conversation")


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Annotated[str, Field(max_length=10_000, description="The documented resolution.")] | None = None
    survey: Literal["csat", "nps", "ces", "none"] | None = Field(
        None, description="Feedback question to send the customer; default SWITCHBOARD_SURVEY_KIND."
    )


@router.post("/v1/conversations/{conversation_id}/resolve", status_code=204)
async def resolve_conversation(
    conversation_id: str,
    router_: RouterDep,
    principal: StaffPrincipal,
    body: ResolveIn | None = None,
    key: IdempotencyKey = None,
) -> None:
    """Resolve: the agent's capacity is freed at once; a customer who writes again within the reopen window
    (SWITCHBOARD_REOPEN_WINDOW_HOURS) reopens it, later a new conversation starts, linked to this one."""
    await may_see_conversation(router_, principal, conversation_id)
    resolve = Resolve(
        conversation_id=conversation_id, note=body.note if body else None, survey=body.survey if body else None
    )
    await router_.commands.run(principal.tenant_id, resolve, key)


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: (
        Annotated[str, Field(min_length=1, max_length=20_000, description="The reply; give it or `template`.")] | None
    ) = None
    template: WhatsAppTemplate | None = Field(
        None,
        description="WhatsApp only, instead of `text`: an approved template, the one message that reaches the "
        "customer once WhatsApp's 24-hour customer service window has closed (`whatsapp_window_closes_at`).",
    )
    channel: Channel | None = Field(
        None, description="Another channel the customer is reachable on; default: where they last wrote."
    )
    pending: bool = Field(
        False, description="Waiting on the customer now: the resolution clock pauses until they write."
    )


@router.post("/v1/conversations/{conversation_id}/reply", status_code=202)
async def reply(conversation_id: str, body: ReplyIn, router_: RouterDep, principal: StaffPrincipal) -> dict[str, Any]:
    """Queue an agent's reply for delivery on the customer's channel; its status (sent, delivered, failed)
    shows on the message in GET /v1/conversations/{id}. Exactly one of `text` and `template`. On WhatsApp,
    free text goes only within 24 hours of the customer's last message there: later it is refused (409, the
    detail says when the window closed, the timeline records it) and a `template` goes instead; a template on
    any other channel is refused (422). A channel the customer withdrew consent for is refused (409)."""
    await may_see_conversation(router_, principal, conversation_id)
    return await router_.replies.reply(
        principal.tenant_id,
        conversation_id,
        body.text,
        body.channel,
        principal.key_prefix,
        pending=body.pending,
        template=body.template,
    )


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    queue_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None


@router.post("/v1/conversations/{conversation_id}/transfer")
async def transfer(
    conversation_id: str, body: TransferIn, router_: RouterDep, principal: StaffPrincipal, key: IdempotencyKey = None
) -> dict[str, Any]:
    """To an agent (online, with room on the channel) or to a queue (the conversation keeps its place)."""
    if (body.agent_id is None) == (body.queue_id is None):
        raise InvalidCommand("give exactly one of agent_id and queue_id")
    await may_see_conversation(router_, principal, conversation_id)
    move = Transfer(conversation_id=conversation_id, agent_id=body.agent_id, queue_id=body.queue_id)
    await router_.commands.run(principal.tenant_id, move, key)
    async with router_.repo.reader() as conn:
        found = await queries.conversation(conn, principal.tenant_id, conversation_id)
    assert found is not None
    return found


@router.get("/v1/agents", tags=["agents"])
async def list_agents(router_: RouterDep, principal: StaffPrincipal) -> list[dict[str, Any]]:
    """The tenant's agents with their queues, capacity, skills, languages and presence."""
    async with router_.repo.reader() as conn:
        return await queries.agents(conn, principal.tenant_id)


@router.get("/v1/queues", tags=["queues"])
async def list_queues(router_: RouterDep, principal: StaffPrincipal) -> list[dict[str, Any]]:
    """The tenant's queues with their channels and routing settings."""
    async with router_.repo.reader() as conn:
        return await queries.queues(conn, principal.tenant_id)
