"""Supervisors manage queues and agents; everyone on the desk can see the queue."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.router.domain.errors import InvalidCommand
from services.router.domain.model import DEFAULT_CAPACITY, Presence
from services.router.domain.routing.queue_config import check
from services.router.domain.routing.specs import Strategy
from services.router.entrypoints.http.deps import RouterDep, StaffPrincipal, SupervisorPrincipal
from shared.events import Channel

router = APIRouter()
Span = Annotated[str, Field(pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$")]
Skills = dict[Annotated[str, Field(max_length=64)], Annotated[int, Field(ge=0, le=10)]]
VoiceEndpoint = Annotated[
    str,
    Field(
        pattern=r"^(client:[A-Za-z0-9_.@-]{1,100}|\+[1-9][0-9]{6,14})$",
        description='Where calls are put through: "client:<identity>" (softphone) or an E.164 number.',
    ),
]
Languages = Annotated[list[Annotated[str, Field(min_length=2, max_length=35)]], Field(max_length=50)]
Name = Annotated[str, Field(min_length=1, max_length=128)]


class HoursIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timezone: Annotated[str, Field(min_length=1, max_length=64, examples=["Europe/Paris"])]
    week: dict[Annotated[str, Field(pattern="^(mon|tue|wed|thu|fri|sat|sun)$")], list[Span]] = Field(
        description='Opening spans per weekday: {"mon": ["09:00-12:30", "13:30-17:00"]}.'
    )
    holidays: Annotated[list[date], Field(max_length=400)] = Field(default_factory=list)


Targets = dict[Annotated[str, Field(max_length=16)], Annotated[float, Field(gt=0, le=90 * 86_400)]]


class SlaActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    raise_priority: bool = False
    escalate_to: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None, description="Queue the conversation moves to."
    )


class SlaIn(BaseModel):
    """Overrides of the default targets (seconds, per channel or "default") and what warnings and breaches do."""

    model_config = ConfigDict(extra="forbid")
    first_response_s: Targets | None = None
    next_response_s: Targets | None = None
    resolution_s: Targets | None = None
    on_warning: SlaActionIn | None = None
    on_breach: SlaActionIn | None = None


AckKind = Literal["within", "by", "closed"]


class _DeskMessageIn(BaseModel):
    """What the desk sends a customer on its own, per queue: on or off, and per channel."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    channels: dict[Channel, bool] | None = Field(
        None, description='Channels turned on or off (a channel not named is on; voice never): {"chat": false}.'
    )


class AcknowledgementIn(_DeskMessageIn):
    """What a new conversation is told first: that the message arrived and when to expect an answer (on by
    default; domain/acknowledgement.py)."""

    templates: (
        dict[Annotated[str, Field(pattern="^[a-z]{2,3}$")], dict[AckKind, Annotated[str, Field(max_length=2000)]]]
        | None
    ) = Field(
        None,
        description="The queue's own texts per language (ISO 639-1): within ({within}), by ({by}), closed "
        '({opens}, {by}): {"de": {"by": "Danke! Antwort bis {by}."}}.',
    )


class FollowUpIn(_DeskMessageIn):
    """A check-in some time after a resolution ("is everything solved?"); the customer's reply reopens the
    conversation (off unless given; domain/follow_up.py)."""

    after_s: Annotated[float, Field(ge=60, le=30 * 86_400)] = Field(
        172_800.0, description="How long after the resolution (moved to the queue's next opening if closed then)."
    )
    templates: dict[Annotated[str, Field(pattern="^[a-z]{2,3}$")], Annotated[str, Field(max_length=2000)]] | None = (
        Field(None, description='The queue\'s own text per language (ISO 639-1): {"fr": "Tout est-il réglé ?"}.')
    )


class StepIn(BaseModel):
    """Who may take the work from ``after_s`` after arrival: these agents, or these skills at these levels, or
    (neither) anyone of the queue; with ``queue``, the agents of that queue (a team) instead of this one's."""

    model_config = ConfigDict(extra="forbid")
    after_s: Annotated[float, Field(ge=0, le=7 * 86_400)] = 0.0
    agents: Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=100)] | None = None
    skills: dict[Annotated[str, Field(max_length=64)], Annotated[int, Field(ge=0, le=10)]] | None = None
    queue: str | None = Field(
        None,
        max_length=64,
        description="Another queue's id: its agents take the work at this step (the work stays in its queue).",
    )


class RoutingIn(BaseModel):
    """How a queue routes (all optional): who it takes, how it picks an agent, what happens when nobody takes."""

    model_config = ConfigDict(extra="forbid")
    rule: dict[str, Any] | None = Field(
        None,
        description="Structured rule over channel, tier, language, tags, attributes.*: "
        '{"all": [{"attr": "tier", "in": ["gold"]}, {"attr": "tags", "has": "billing"}]}.',
    )
    order: Annotated[int, Field(ge=0, le=10_000)] | None = Field(None, description="Lower is tried first.")
    strategy: Strategy = Strategy.LEAST_LOADED
    sticky_wait_s: Annotated[float, Field(ge=0, le=86_400)] = Field(
        60.0, description="strategy sticky: how long a conversation waits for the agent who last helped the customer."
    )
    owner_wait_s: Annotated[float, Field(ge=0, le=86_400)] = Field(
        120.0, description="How long a conversation waits for the customer's owner while they are online but busy."
    )
    offer_timeout_s: Annotated[float, Field(gt=0, le=3_600)] | None = Field(
        None, description="Offer to the agent and wait this long for accept; none: assign directly."
    )
    max_declines: Annotated[int, Field(ge=1, le=100)] = 3
    decline_exclusion_s: Annotated[float, Field(ge=0, le=7 * 86_400)] = Field(
        600.0, description="After a decline, the agent is not offered that conversation again for this long."
    )
    on_missed_offer: Literal["away", "decline"] = Field(
        "away",
        description="An offer left to time out: away sets the agent away (offered work again once they are back "
        "online); decline counts it as a decline and leaves them online.",
    )
    priority: Literal["arrival", "deadline"] = Field(
        "arrival",
        description="arrival: first come first served, higher tiers a head start; deadline: the nearest "
        "first-response promise first (a chat before an email, until the email's is nearer).",
    )
    steps: Annotated[list[StepIn], Field(max_length=10)] | None = Field(
        None,
        description="Widening in steps: the first at 0 s, each later one replacing the requirements of the one "
        "before (preferred agents → a skill level → anyone). The conversation keeps its place throughout.",
    )
    overflow_after_s: Annotated[float, Field(gt=0, le=7 * 86_400)] | None = None
    overflow_to: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    skills: dict[Annotated[str, Field(max_length=64)], Annotated[int, Field(ge=0, le=10)]] | None = None
    hours: HoursIn | None = None
    sla: SlaIn | None = None
    acknowledgement: AcknowledgementIn | None = None
    follow_up: FollowUpIn | bool | None = Field(
        None, description="A check-in after a resolution: true for the defaults, or its options."
    )

    @model_validator(mode="after")
    def _usable(self) -> RoutingIn:
        try:
            check(self.model_dump(mode="json", exclude_none=True))
        except InvalidCommand as exc:
            raise ValueError(str(exc)) from exc
        return self


class QueueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    channels: Annotated[list[Channel], Field(max_length=20)] = Field(
        default_factory=list, description="Channels this queue takes; the default queue takes the rest."
    )
    is_default: bool = False
    routing: RoutingIn = Field(default_factory=RoutingIn)


class QueuePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    channels: Annotated[list[Channel], Field(max_length=20)] | None = None
    is_default: bool | None = None
    routing: RoutingIn | None = None


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=256)]
    queue_ids: Annotated[list[str], Field(max_length=100)] = Field(default_factory=list)
    capacity: dict[str, Annotated[int, Field(ge=0, le=1000)]] = Field(
        default_factory=lambda: dict(DEFAULT_CAPACITY),
        description='Conversations at once per channel, "default" for the others: {"default": 3, "email": 5}.',
    )
    presence: Presence = Presence.OFFLINE
    skills: Skills = Field(default_factory=dict, description='Skill → level (0-10): {"billing": 3}.')
    languages: Languages = Field(default_factory=list, description="BCP 47 tags; empty: any language.")
    profile_id: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None, description="A routing profile (POST /v1/profiles): capacity in weighted units across channels."
    )
    voice_endpoint: VoiceEndpoint | None = None


class AgentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    queue_ids: Annotated[list[str], Field(max_length=100)] | None = None
    capacity: dict[str, Annotated[int, Field(ge=0, le=1000)]] | None = None
    skills: Skills | None = None
    languages: Languages | None = None
    profile_id: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None, description="A routing profile (POST /v1/profiles): capacity in weighted units across channels."
    )
    voice_endpoint: VoiceEndpoint | None = None


def _values(body: BaseModel) -> dict[str, Any]:
    return body.model_dump(mode="json", exclude_none=True)


@router.post("/v1/queues", status_code=201, tags=["queues"])
async def create_queue(body: QueueIn, router_: RouterDep, principal: SupervisorPrincipal) -> dict[str, Any]:
    """A queue: the channels it takes and how it routes (rule, strategy, offers, overflow, skills, hours, SLA).
    Waiting work it can take is routed at once."""
    return await router_.configuration.create_queue(principal.tenant_id, _values(body))


@router.get("/v1/queues/{queue_id}", tags=["queues"])
async def get_queue(queue_id: str, router_: RouterDep, principal: StaffPrincipal) -> dict[str, Any]:
    """One queue with its channels and routing settings."""
    return await router_.configuration.queue(principal.tenant_id, queue_id)


@router.patch("/v1/queues/{queue_id}", tags=["queues"])
async def patch_queue(
    queue_id: str, body: QueuePatch, router_: RouterDep, principal: SupervisorPrincipal
) -> dict[str, Any]:
    """Change the fields given (name, channels, default, routing); waiting work is routed again at once."""
    return await router_.configuration.update_queue(principal.tenant_id, queue_id, _values(body))


@router.delete("/v1/queues/{queue_id}", status_code=204, tags=["queues"])
async def delete_queue(queue_id: str, router_: RouterDep, principal: SupervisorPrincipal) -> Response:
    """Delete a queue; one that still holds open conversations cannot be deleted (409)."""
    await router_.configuration.delete_queue(principal.tenant_id, queue_id)
    return Response(status_code=204)


@router.get("/v1/queues/{queue_id}/waiting", tags=["queues"])
async def queue_waiting(
    queue_id: str, router_: RouterDep, principal: StaffPrincipal, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> dict[str, Any]:
    """Waiting conversations in the order they will be served, with position and wait so far."""
    items = await router_.configuration.waiting(principal.tenant_id, queue_id, limit)
    return {"queue_id": queue_id, "items": items}


@router.post("/v1/agents", status_code=201, tags=["agents"])
async def create_agent(body: AgentIn, router_: RouterDep, principal: SupervisorPrincipal) -> dict[str, Any]:
    """An agent with their queues, capacity (or routing profile), skills, languages and presence. An agent
    created online is offered waiting work at once."""
    return await router_.configuration.create_agent(principal.tenant_id, _values(body))


@router.get("/v1/agents/{agent_id}", tags=["agents"])
async def get_agent(agent_id: str, router_: RouterDep, principal: StaffPrincipal) -> dict[str, Any]:
    """One agent with presence (and why it last changed), capacity, and load: what they hold now, per channel and
    in units (of their routing profile, if they have one)."""
    return await router_.configuration.agent(principal.tenant_id, agent_id)


@router.patch("/v1/agents/{agent_id}", tags=["agents"])
async def patch_agent(
    agent_id: str, body: AgentPatch, router_: RouterDep, principal: SupervisorPrincipal
) -> dict[str, Any]:
    """Change the fields given (name, queues, capacity, skills, languages, routing profile, voice endpoint).
    Presence has its own endpoint (it routes waiting work)."""
    return await router_.configuration.update_agent(principal.tenant_id, agent_id, _values(body))


@router.delete("/v1/agents/{agent_id}", status_code=204, tags=["agents"])
async def delete_agent(agent_id: str, router_: RouterDep, principal: SupervisorPrincipal) -> Response:
    """Delete an agent who holds no conversation (409 otherwise: transfer or resolve them first). An agent with
    past assignments is retired instead (offline, in no queue), so their history keeps pointing at them."""
    await router_.configuration.delete_agent(principal.tenant_id, agent_id)
    return Response(status_code=204)
