"""The conversation event: the one versioned schema every service speaks.

CloudEvents 1.0 style envelope (id, source, type, time, specversion) plus ``schema_version``. Validated once at
the boundary (``decode_event``) and trusted after. An unknown ``schema_version`` is refused explicitly with
``UnsupportedSchemaVersion`` rather than half-parsed, so consumers can dead-letter it with that reason.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = frozenset({SCHEMA_VERSION})

# Bounded strings keep one malformed producer from pushing megabytes through every stage.
ShortStr = Annotated[str, Field(min_length=1, max_length=512)]
Text = Annotated[str, Field(max_length=100_000)]


class Channel(StrEnum):
    EMAIL = "email"
    CHAT = "chat"
    MESSENGER = "messenger"
    INSTAGRAM = "instagram"
    WHATSAPP = "whatsapp"
    TELEGRAM = "telegram"
    SMS = "sms"
    IN_APP = "in_app"
    VOICE = "voice"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class IdentityKind(StrEnum):
    """What a channel identity's value is. Phones and emails are shared across channels (identity graph)."""

    EMAIL = "email"
    PHONE = "phone"
    APP_USER = "app_user"
    MESSENGER_PSID = "messenger_psid"
    INSTAGRAM_ID = "instagram_id"
    TELEGRAM_ID = "telegram_id"
    CHAT_VISITOR = "chat_visitor"


class EventType(StrEnum):
    MESSAGE_RECEIVED = "switchboard.message.received"
    # A phone call's progress (ringing, answered, completed, abandoned, agent_no_answer...): on the timeline and
    # to routing, never a message of its own.
    CALL_STATUS = "switchboard.call.status"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class Claim(_Strict):
    """Something the sender says about themselves; ``verified`` only when the channel proved it."""

    kind: IdentityKind
    value: ShortStr
    verified: bool = False


class Sender(_Strict):
    kind: IdentityKind
    value: ShortStr
    verified: bool = False
    display_name: Annotated[str, Field(max_length=256)] | None = None
    claims: Annotated[list[Claim], Field(max_length=16)] = []
    # Profile facts about the sender (tier, language, custom attributes). Trusted only when ``verified``.
    attributes: Annotated[dict[str, Annotated[str, Field(max_length=256)]], Field(max_length=32)] = {}


class Attachment(_Strict):
    """Metadata plus a reference to where the bytes are stored: raw blobs never travel on the bus."""

    name: Annotated[str, Field(max_length=512)]
    content_type: Annotated[str, Field(max_length=255)]
    size: Annotated[int, Field(ge=0)]
    ref: Annotated[str, Field(max_length=2048)]


class Content(_Strict):
    text: Text = ""
    html: Text | None = None
    subject: Annotated[str, Field(max_length=998)] | None = None  # RFC 5322 §2.1.1 line limit
    attachments: Annotated[list[Attachment], Field(max_length=100)] = []


class CallStatus(StrEnum):
    QUEUED = "queued"  # an incoming call waits for an agent
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    ABANDONED = "abandoned"  # the caller hung up while waiting
    NO_ANSWER = "no-answer"
    BUSY = "busy"
    FAILED = "failed"
    CANCELED = "canceled"
    AGENT_NO_ANSWER = "agent-no-answer"  # the agent it was put through to did not pick up
    VOICEMAIL = "voicemail"
    CALLBACK_REQUESTED = "callback-requested"


class Call(_Strict):
    """What a voice event adds: the provider's call id and where the call stands."""

    sid: ShortStr | None = None  # absent for a callback request (no call yet)
    status: CallStatus
    agent_id: ShortStr | None = None  # for agent-no-answer: who did not pick up
    duration_s: Annotated[int, Field(ge=0)] | None = None
    window_start: datetime | None = None  # callback requests: when the customer wants the call
    window_end: datetime | None = None


class ConversationEvent(_Strict):
    specversion: Literal["1.0"] = "1.0"
    id: ShortStr
    source: ShortStr
    type: EventType = EventType.MESSAGE_RECEIVED
    time: datetime
    schema_version: Literal[1] = 1
    tenant: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    channel: Channel
    direction: Direction = Direction.INBOUND
    channel_message_id: ShortStr | None = None
    thread_ref: ShortStr | None = None
    sender: Sender
    content: Content
    sent_at: datetime | None = None
    received_at: datetime
    call: Call | None = None

    def partition_key(self) -> bytes:
        """Kafka key: the tenant. One router owns a tenant's partition (its events and routing commands, see
        shared/topics.py), so the tenant has one writer and every customer's messages stay in order."""
        return self.tenant.encode()


class InvalidEvent(ValueError):
    """An event that can never be processed: dead-letter it with ``reason`` and move on (not retriable)."""

    retriable = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnsupportedSchemaVersion(InvalidEvent):
    pass


def new_event_id() -> str:
    return str(uuid.uuid4())


def event_id_for(tenant: str, idempotency_key: str) -> str:
    """A stable event id from a client's idempotency key, so a retried request becomes the same event."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"switchboard:{tenant}:{idempotency_key}"))


def utcnow() -> datetime:
    return datetime.now(UTC)


def encode_event(event: ConversationEvent) -> bytes:
    return event.model_dump_json(exclude_none=True).encode()


def versioned_object(raw: bytes, supported: frozenset[int] = SUPPORTED_SCHEMA_VERSIONS) -> dict[str, Any]:
    """A JSON object of a schema version we know, or ``InvalidEvent`` saying why not."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidEvent("not a JSON object")
    version = data.get("schema_version")
    if version not in supported:
        raise UnsupportedSchemaVersion(f"unsupported schema_version {version!r}")
    return data


def decode_event(raw: bytes) -> ConversationEvent:
    """Parse and validate; raise ``InvalidEvent`` (with a human-readable reason) on anything else."""
    data = versioned_object(raw)
    try:
        return ConversationEvent.model_validate(data)
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise InvalidEvent(f"invalid event: {errors}") from exc
