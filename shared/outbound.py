"""What goes back out: an agent's reply for a connector to deliver, and the delivery status it reports.

Replies travel on ``conversation.outbound.<channel>`` (key: conversation id, so one conversation's replies
keep their order); statuses come back on ``conversation.status``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.events import Channel, IdentityKind, InvalidEvent, versioned_object, without_nul

M = TypeVar("M", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Recipient(_Strict):
    kind: IdentityKind
    value: Annotated[str, Field(min_length=1, max_length=512)]


class SurveyCard(_Strict):
    """A satisfaction question the channel may render natively (a chat card); the text carries it too."""

    token: Annotated[str, Field(min_length=16, max_length=64)]
    kind: Literal["csat", "nps", "ces"]
    question: Annotated[str, Field(max_length=500)]
    min: int
    max: int
    answer_url: str | None = None


class WhatsAppTemplate(_Strict):
    """An approved WhatsApp message template (created and approved in WhatsApp Manager), the one kind of message
    that reaches a customer outside WhatsApp's 24-hour customer service window. ``parameters`` fill the body's
    variables in order ({{1}}, {{2}}...); the connector sends it in the Cloud API's template shape."""

    name: Annotated[
        str,
        Field(
            pattern=r"^[a-z0-9_]{1,512}$",
            description="The template's name as approved: lowercase letters, digits and underscores.",
        ),
    ]
    language: Annotated[
        str,
        Field(
            pattern=r"^[a-z]{2,3}(_[A-Za-z0-9]{2,4})?$",
            description="The language code of the approved translation, e.g. `en`, `en_US`, `pt_BR`.",
        ),
    ]
    parameters: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=1024)]],
        Field(max_length=100, description="The body's variables in order, as text."),
    ] = []

    def as_text(self) -> str:
        """What the timeline shows for it: the desk does not hold the approved body, only what fills it."""
        filled = f": {' | '.join(self.parameters)}" if self.parameters else ""
        return f"[WhatsApp template {self.name} ({self.language})]{filled}"


class OutboundMessage(_Strict):
    type: Literal["switchboard.message.outbound"] = "switchboard.message.outbound"
    schema_version: Literal[1] = 1
    id: Annotated[str, Field(min_length=1, max_length=64)]  # our message id: the delivery idempotency key
    tenant: str
    conversation_id: str
    channel: Channel
    to: Recipient
    text: Annotated[str, Field(min_length=1, max_length=100_000)]
    subject: Annotated[str, Field(max_length=998)] | None = None
    # email threading (RFC 5322 §3.6.4): the customer's message we answer, and the chain before it
    in_reply_to: Annotated[str, Field(max_length=998)] | None = None
    references: Annotated[list[str], Field(max_length=100)] = []
    thread_ref: Annotated[str, Field(max_length=512)] | None = None  # e.g. the Telegram chat id
    created_at: datetime
    survey: SurveyCard | None = None
    # WhatsApp only: send this template instead of ``text`` (which then says what the timeline shows)
    template: WhatsAppTemplate | None = None
    # the language of ``text`` (BCP 47), where a voice speaks it (a call's closed-hours prompt)
    language: Annotated[str, Field(pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")] | None = None


class DeliveryState(StrEnum):
    QUEUED = "queued"
    SENT = "sent"  # the provider accepted it
    DELIVERED = "delivered"  # it reached the customer's device or open chat
    FAILED = "failed"  # permanently; the agent sees why


class DeliveryStatus(_Strict):
    type: Literal["switchboard.delivery.status"] = "switchboard.delivery.status"
    schema_version: Literal[1] = 1
    tenant: str
    message_id: str
    conversation_id: str
    channel: Channel
    state: DeliveryState
    provider_message_id: Annotated[str, Field(max_length=512)] | None = None
    error: Annotated[str, Field(max_length=1000)] | None = None
    attempts: int = 1
    time: datetime


def encode(model: BaseModel) -> bytes:
    return model.model_dump_json(exclude_none=True).encode()


def decode_outbound(raw: bytes) -> OutboundMessage:
    return _decode(OutboundMessage, raw)


def decode_status(raw: bytes) -> DeliveryStatus:
    return _decode(DeliveryStatus, raw)


def _decode(model: type[M], raw: bytes) -> M:
    data = versioned_object(raw)
    if b"\\u0000" in raw:  # a provider's error text may carry NUL; PostgreSQL cannot store it
        data = without_nul(data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidEvent(f"invalid {model.__name__}: {exc.errors()[0]['msg']}") from exc
