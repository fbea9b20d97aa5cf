"""Agent feed events: routing as one agent (or the desk's ``supervisors`` feed) sees it, as a versioned schema.

Published on ``routing.assignments`` (key: agent id), replayed from the router's ``agent_events`` table on the
live feeds (SSE ``id`` and WebSocket resume position: ``seq``) and POSTed to webhooks. One flat JSON object:
the envelope (``type``, ``schema_version``, ``seq``, ``id``, ``tenant``, ``agent_id``, ``conversation_id``,
``at``) and the fields of its type, next to it rather than nested, as consoles and webhook receivers have always
read them. Instants are ISO 8601 with a numeric offset (``+00:00``), as ``datetime.isoformat`` writes them.

``decode`` validates once at the boundary. A record of an unknown ``schema_version`` is refused with
``UnsupportedSchemaVersion``; a record without the field was written before it existed and is read as version 1
(a rolling upgrade leaves some on the topic, and a webhook consumer resumes from its committed offset).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, get_args

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    Tag,
    TypeAdapter,
    ValidationError,
    model_serializer,
)

from shared.events import Channel, Direction, InvalidEvent, UnsupportedSchemaVersion, versioned_object

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = frozenset({SCHEMA_VERSION})


def _iso(value: datetime) -> str:
    return value.isoformat()


# What orjson wrote for a datetime before this schema existed (``+00:00``, not pydantic's ``Z``): same bytes.
Instant = Annotated[AwareDatetime, PlainSerializer(_iso, return_type=str, when_used="json")]
Id = Annotated[str, Field(min_length=1, max_length=64)]
Tenant = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Ref = Annotated[str, Field(max_length=512)]
Text = Annotated[str, Field(max_length=100_000)]


def versioned(raw: bytes, supported: frozenset[int]) -> dict[str, Any]:
    """A JSON object of a ``supported`` version (``shared.events.versioned_object``); a record without
    ``schema_version`` predates it and is read as version 1. ``InvalidEvent`` (``UnsupportedSchemaVersion``)
    otherwise."""
    try:
        return versioned_object(raw, supported)
    except UnsupportedSchemaVersion:
        data = orjson.loads(raw)  # an object: versioned_object got as far as its version
        if "schema_version" in data or 1 not in supported:
            raise
        return {**data, "schema_version": 1}


def refusal(exc: ValidationError, what: str) -> InvalidEvent:
    """The first problems' fields and messages: pydantic's messages say what was expected, not what was sent
    (but for an unknown ``type``), so dead-letter reasons and logs hold no personal data."""
    errors = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
    return InvalidEvent(f"invalid {what}: {errors}")


FeedType = Literal["offer", "assignment", "unassignment", "message", "sla.warning", "sla.breach", "presence"]
TYPES: tuple[str, ...] = get_args(FeedType)


class _FeedEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: FeedType
    schema_version: Literal[1] = 1
    seq: Annotated[int, Field(ge=1)]  # the agent's feed position: resume after it
    id: Id
    tenant: Tenant
    agent_id: Id  # or "supervisors", the desk-wide feed
    conversation_id: Id | None
    at: Instant


class _Caused(_FeedEvent):
    """Events a customer's message brought about carry it: the conversation event's ``event_id`` and when it was
    ``received_at`` (by the connector or the API), so a reader measures the time from the customer to the agent
    without asking the router. Fields of this kind are on the wire only when the router set them: events stored
    before they existed, or not caused by a message (a transfer, a timer), go out as before."""

    event_id: Ref | None = None
    received_at: Instant | None = None
    # the message's trace (W3C trace context) while tracing is on (shared/tracing.py): a reader continues it
    traceparent: Annotated[str, Field(pattern=r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")] | None = None

    ONLY_WHEN_SET: ClassVar[frozenset[str]] = frozenset({"event_id", "received_at", "traceparent"})

    @model_serializer(mode="wrap")
    def _as_sent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in self.ONLY_WHEN_SET - self.model_fields_set:
            data.pop(name, None)
        return data


class _Work(_Caused):
    """Offers and assignments. Of voice work they also carry what the voice connector and the console need to
    put it through (``services/router/handlers/voice.py``): a call's ``call_sid``, or a callback's ``request``,
    the customer's ``phone`` and the agent's ``voice_endpoint``. Those fields are on the wire only when the router
    set them (even to null), never as invented nulls on other channels' work."""

    queue_id: Ref
    channel: Channel
    task: Literal["call", "callback"] | None = None
    call_sid: Ref | None = None
    request: Text | None = None
    phone: Ref | None = None
    voice_endpoint: Ref | None = None

    ONLY_WHEN_SET: ClassVar[frozenset[str]] = _Caused.ONLY_WHEN_SET | {
        "task",
        "call_sid",
        "request",
        "phone",
        "voice_endpoint",
    }


class Offer(_Work):
    """The conversation is offered to the agent until ``expires_at``: accept, decline or let it time out."""

    type: Literal["offer"] = "offer"
    expires_at: Instant


class Assignment(_Work):
    """The conversation is the agent's. ``reason``: routed, accepted, sticky, claimed, transferred."""

    type: Literal["assignment"] = "assignment"
    assigned_at: Instant
    reason: Ref


class Unassignment(_FeedEvent):
    """The conversation is no longer the agent's. ``reason``: agent_offline, declined, offer_timeout,
    transferred, resolved."""

    type: Literal["unassignment"] = "unassignment"
    reason: Ref


class Message(_Caused):
    """A new message in a conversation the agent holds."""

    type: Literal["message"] = "message"
    message_id: Id  # the stored message's; ``event_id`` is the conversation event's that brought it
    channel: Channel
    direction: Direction
    text: Text
    subject: Annotated[str, Field(max_length=998)] | None  # RFC 5322 §2.1.1 line limit; null but email


SlaKind = Literal["first_response", "next_response", "resolution"]


class _SlaStage(_FeedEvent):
    """A stage an SLA promise's clock reached (``services/router/domain/sla.py``): which promise, when it is
    due, and the queue of the conversation."""

    kind: SlaKind
    stage: Literal["warning", "breach"]
    due_at: Instant
    queue_id: Ref | None


class SlaWarning(_SlaStage):
    """An SLA promise is close to due (``services/router/domain/sla.py``), to its agent and the supervisors."""

    type: Literal["sla.warning"] = "sla.warning"
    stage: Literal["warning"] = "warning"


class SlaBreach(_SlaStage):
    """An SLA promise was missed."""

    type: Literal["sla.breach"] = "sla.breach"
    stage: Literal["breach"] = "breach"


class PresenceChange(_FeedEvent):
    """An agent's presence changed, on their own feed and the supervisors'. ``agent``: whose. ``reason``: agent
    (they set it), supervisor, missed_offer (an offer ran out: set away until they are back online),
    disconnected (their last console connection dropped and none came back within the grace time)."""

    type: Literal["presence"] = "presence"
    agent: Id
    presence: Literal["online", "away", "offline"]
    reason: Ref


class Blanked(_FeedEvent):
    """An event of a conversation since erased (GDPR Art. 17) or past retention: the router blanks the stored
    event's fields (``services/router/adapters/db/erasure.py``), so a replay of it carries the envelope only."""


_ENVELOPE = frozenset(_FeedEvent.model_fields)


def _variant(value: Any) -> str | None:
    """The tag: the ``type``, or ``blanked`` for an event of a known type that has nothing but the envelope."""
    if isinstance(value, dict):
        kind = value.get("type")
        if kind in TYPES and value.keys() <= _ENVELOPE:
            return "blanked"
        return kind if isinstance(kind, str) else None
    return "blanked" if isinstance(value, Blanked) else getattr(value, "type", None)


AgentFeedEvent = Annotated[
    Annotated[Offer, Tag("offer")]
    | Annotated[Assignment, Tag("assignment")]
    | Annotated[Unassignment, Tag("unassignment")]
    | Annotated[Message, Tag("message")]
    | Annotated[SlaWarning, Tag("sla.warning")]
    | Annotated[SlaBreach, Tag("sla.breach")]
    | Annotated[PresenceChange, Tag("presence")]
    | Annotated[Blanked, Tag("blanked")],
    Discriminator(_variant),
]
_ADAPTER: TypeAdapter[AgentFeedEvent] = TypeAdapter(AgentFeedEvent)


def validate(data: dict[str, Any]) -> AgentFeedEvent:
    """An event from its fields (a producer's, or a decoded object): ``InvalidEvent`` if they do not fit."""
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise refusal(exc, "feed event") from exc


def as_object(event: BaseModel) -> dict[str, Any]:
    """The event's JSON object, as consoles are sent it (and customer events are written)."""
    data: dict[str, Any] = event.model_dump(mode="json")
    return data


def encode(event: BaseModel) -> bytes:
    return orjson.dumps(as_object(event))


def decode(raw: bytes) -> AgentFeedEvent:
    """Parse and validate a ``routing.assignments`` record; ``InvalidEvent`` saying why not."""
    return validate(versioned(raw, SUPPORTED_SCHEMA_VERSIONS))
