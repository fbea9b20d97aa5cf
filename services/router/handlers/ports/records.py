"""The values handlers hand to the store and get back from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.router.domain.model import Presence

IdentityKey = tuple[str, str, str]  # tenant, kind, normalized value


@dataclass(frozen=True, slots=True)
class NewCustomer:
    tenant_id: str
    kind: str
    value: str
    verified: bool
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    language: str | None = None
    tier: str = "standard"
    attributes: dict[str, str] = field(default_factory=dict)
    owner_agent_id: str | None = None  # named by a verified app (kept only if it names an agent of the tenant)


@dataclass(frozen=True, slots=True)
class NewIdentity:
    tenant_id: str
    customer_id: str
    kind: str
    value: str
    verified: bool


@dataclass(frozen=True, slots=True)
class NewConversation:
    """A conversation a customer's message starts, not yet written: it is inserted once routing has placed it
    (``Placement``), so its row is written once, complete."""

    id: str
    tenant_id: str
    customer_id: str
    channel: str
    opened_at: datetime
    last_message_at: datetime
    awaiting: str | None
    previous_conversation_id: str | None


@dataclass(frozen=True, slots=True)
class Placement:
    """Where routing put a conversation: its routing fact (None: not in routing), the queue it waits in, and the
    agent offered or given it, since ``at``."""

    routing: dict[str, Any] | None
    queue_id: str | None
    agent_id: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """A timeline entry that is not a message: opened, reopened, assigned, resolved, merged..."""

    tenant_id: str
    customer_id: str
    conversation_id: str | None
    kind: str
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OpenConversation:
    id: str
    tenant_id: str
    customer_id: str
    channel: str
    queue_id: str | None
    agent_id: str | None
    awaiting: str | None = None  # "customer" once an agent has answered


@dataclass(frozen=True, slots=True)
class NewMessage:
    id: str
    tenant_id: str
    event_id: str
    conversation_id: str
    customer_id: str
    channel: str
    direction: str
    channel_message_id: str | None
    sender_kind: str
    subject: str | None
    text: str
    sent_at: datetime | None
    received_at: datetime
    thread_ref: str | None = None
    author: str | None = None
    status: str | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)  # references (name, type, size, ref)
    sanitized: dict[str, Any] | None = None  # what the edge changed so it could be stored (shared/events.py)
    # an acknowledgement's promise: the message is its "acknowledged" timeline entry too (tables/context.py)
    acknowledgement: dict[str, Any] | None = None


def fields_of(row: Any) -> dict[str, Any]:
    """A record's fields as a dict (for a multi-row insert)."""
    return {k: getattr(row, k) for k in row.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class StoredCustomer:
    created_at: datetime
    attrs: dict[str, Any]  # what routing sees (``Customers.customer_attrs``)


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """What a reply needs to know about its conversation: whose it is, where the customer last wrote, and the
    customer's consent map (channel → bool, see domain/consent.py)."""

    customer_id: str
    channel: str
    consent: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LastInbound:
    """The customer's latest message on a channel, which a reply threads under; when it arrived opens WhatsApp's
    customer service window (domain/whatsapp_window.py)."""

    channel_message_id: str | None
    thread_ref: str | None
    subject: str | None
    received_at: datetime | None = None  # by the connector's clock
    stored_at: datetime | None = None  # by the router's


@dataclass(frozen=True, slots=True)
class OutboundState:
    """Where one of our outbound messages stands, as a delivery status report finds it."""

    id: str
    tenant_id: str
    customer_id: str
    conversation_id: str
    status: str | None


@dataclass(frozen=True, slots=True)
class DeliveryUpdate:
    """A connector's report on an outbound message; None leaves what is stored as it was."""

    tenant_id: str
    message_id: str
    status: str
    channel_message_id: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class SurveyedConversation:
    """Who a survey on a conversation goes to, on which channel, and which agent it rates."""

    customer_id: str
    channel: str
    agent_id: str | None


@dataclass(frozen=True, slots=True)
class NewSurvey:
    id: str
    tenant_id: str
    conversation_id: str
    customer_id: str
    agent_id: str | None
    kind: str
    channel: str
    token: str
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class SentSurvey:
    id: str
    tenant_id: str
    conversation_id: str
    customer_id: str
    kind: str
    answered_at: datetime | None


@dataclass(frozen=True, slots=True)
class SurveyAnswer:
    tenant_id: str
    survey_id: str
    score: int  # on the scale of the survey's kind (csat 1-5, nps 0-10, ces 1-7: handlers/surveys.py)
    comment: str | None


@dataclass(frozen=True, slots=True)
class NewSlaTimer:
    """A promise starting on a conversation, its deadlines counted already (in the queue's business hours). It
    runs in its conversation's slot for its kind (``domain.sla.slot``)."""

    tenant_id: str
    conversation_id: str
    kind: str
    queue_id: str | None
    target_s: float
    started_at: datetime
    warn_at: datetime
    due_at: datetime


@dataclass(frozen=True, slots=True)
class LiveSlaTimer:
    """A clock running (or paused) on a conversation: what pausing, resuming or settling it needs."""

    tenant_id: str
    conversation_id: str
    kind: str
    queue_id: str | None
    target_s: float
    started_at: datetime
    warn_at: datetime
    due_at: datetime
    paused_at: datetime | None
    remaining_s: float | None  # set while paused
    warned_at: datetime | None
    breached_at: datetime | None


@dataclass(frozen=True, slots=True)
class SettledSlaTimer:
    """A clock stopped: it leaves its conversation's slot for the history, met or missed."""

    id: str
    clock: LiveSlaTimer
    stopped_at: datetime
    met: bool


@dataclass(frozen=True, slots=True)
class SlaDeadlines:
    """A resumed clock's new deadlines."""

    tenant_id: str
    conversation_id: str
    kind: str
    warn_at: datetime
    due_at: datetime


@dataclass(frozen=True, slots=True)
class DueSlaTimer:
    """A clock due to warn or breach, with who hears of it (the conversation's agent and customer)."""

    conversation_id: str
    kind: str
    queue_id: str | None
    due_at: datetime
    warn_at: datetime
    warned_at: datetime | None
    breached_at: datetime | None
    agent_id: str | None
    customer_id: str


@dataclass(frozen=True, slots=True)
class CallConversation:
    """The conversation a call came in on, as its progress events find it."""

    id: str
    customer_id: str
    status: str
    agent_id: str | None


@dataclass(frozen=True, slots=True)
class WaitingCall:
    conversation_id: str
    customer_id: str
    since: datetime  # queued (opened, if never queued): the caller's wait runs from then


@dataclass(frozen=True, slots=True)
class VoiceRequest:
    """A customer's latest voice message on a conversation: a call (its sid), a callback request or a voicemail
    (``thread_ref`` says which)."""

    tenant_id: str
    conversation_id: str
    customer_id: str
    call_sid: str | None
    thread_ref: str | None
    text: str


@dataclass(frozen=True, slots=True)
class AgentFacts:
    """An agent as routing left them: presence, when last given work; why and when presence changed, if it did."""

    agent_id: str
    presence: Presence
    last_assigned_at: datetime | None
    reason: str | None = None
    changed_at: datetime | None = None
