"""The conversation event: the one versioned schema every service speaks.

CloudEvents 1.0 style envelope (id, source, type, time, specversion) plus ``schema_version``. Validated once at
the boundary (``decode_event``) and trusted after. An unknown ``schema_version`` is refused explicitly with
``UnsupportedSchemaVersion`` rather than half-parsed, so consumers can dead-letter it with that reason.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from shared.ids import new_id

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
    CHAT_VISITOR = "chat_visitor"  # a web chat visitor, kept across reconnects by its signed visitor token


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


class Automated(StrEnum):
    """Why no person wrote a message (RFC 3834 §5 ``Auto-Submitted``, and the headers mail systems use instead):
    the desk never answers it automatically."""

    AUTO_REPLIED = "auto_replied"  # a responder's answer (vacation, out of office)
    AUTO_GENERATED = "auto_generated"  # a system wrote it (notifications, reports)
    BOUNCE = "bounce"  # a delivery or disposition report (RFC 3464, RFC 8098), or sent with a null reverse path
    BULK = "bulk"  # mass mail (Precedence: bulk / junk)
    LIST = "list"  # a mailing list's (Precedence: list, List-Id: RFC 2919)


class Sanitized(_Strict):
    """What the edge changed so that every store can hold the event (``sanitize``), kept with the message."""

    # Paths of strings (values or keys) that had NUL characters removed: PostgreSQL text cannot hold U+0000.
    cleaned: Annotated[list[str], Field(max_length=64)] = []
    # Timestamps outside the plausible window, as they were sent (path → original value): ``sent_at`` was
    # replaced by ``received_at``, a callback window bound was dropped.
    replaced: Annotated[dict[str, Annotated[str, Field(max_length=64)]], Field(max_length=8)] = {}


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
    sanitized: Sanitized | None = None  # absent when nothing had to change
    automated: Automated | None = None  # absent when a person wrote it (or the channel cannot tell)

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
    return new_id()


def event_id_for(tenant: str, idempotency_key: str) -> str:
    """A stable event id from a client's idempotency key, so a retried request becomes the same event."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"switchboard:{tenant}:{idempotency_key}"))


def utcnow() -> datetime:
    return datetime.now(UTC)


def encode_event(event: ConversationEvent) -> bytes:
    """The event's JSON, sanitized (``sanitize``): what a connector produces can be stored by any router. An
    event with nothing to sanitize (the usual one) is not walked: its JSON and its parsed times tell."""
    raw = event.model_dump_json(exclude_none=True).encode()
    if b"\\u0000" not in raw and storable_times(event):
        return raw
    return orjson.dumps(sanitize(orjson.loads(raw)))


# The plausible window of a customer's ``sent_at``: a phone or mail client with a wrong clock, or an app's
# mistyped timestamp, must neither stop the desk (years a database or Python's UTC conversion cannot hold) nor
# reorder a conversation. Outside it, the connector's receive time stands in for it.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)
SCHEDULE_SLACK = timedelta(days=366)  # a callback window may be set a year ahead
_DATETIME = TypeAdapter(datetime)


def as_utc(value: datetime) -> datetime | None:
    """The UTC instant of ``value`` (a time without an offset read as UTC, as ISO 8601 APIs mean it), or None
    when there is none: year 1 with a positive offset, year 9999 with a negative one."""
    try:
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:
        return None


def plausible(value: datetime, received: datetime) -> bool:
    """Inside [2000-01-01, received + 1 day] and convertible to UTC (year 1 +14:00 is not)."""
    utc = as_utc(value)
    return utc is not None and EARLIEST <= utc <= received + FUTURE_SLACK


def storable_times(event: ConversationEvent) -> bool:
    """Every time of a validated event is aware and as ``sanitize`` would leave it: nothing to replace."""
    received = event.received_at
    if event.time.tzinfo is None or received.tzinfo is None or as_utc(event.time) is None:
        return False
    anchor = as_utc(received)
    if anchor is None:
        return False
    sent = event.sent_at
    if sent is not None and (sent.tzinfo is None or not plausible(sent, anchor)):
        return False
    windows = (event.call.window_start, event.call.window_end) if event.call else ()
    return all(w is None or (w.tzinfo is not None and plausible(w, anchor + SCHEDULE_SLACK)) for w in windows)


def sanitize(data: dict[str, Any], *, nul: bool = True) -> dict[str, Any]:
    """Make a decoded event storable by every store, recording what changed in ``sanitized``:

    - NUL (U+0000) removed from every string and key (names, texts, identifiers, attributes): PostgreSQL
      cannot store it, SQLite can, so without this one message could stop a partition on one shape only;
    - a ``sent_at`` outside the plausible window replaced by ``received_at``, a callback window bound outside
      it dropped; the originals are kept in ``sanitized.replaced``;
    - a ``time`` or ``received_at`` that cannot be converted to UTC is refused (``InvalidEvent``): those are the
      connector's own clock, not the customer's.
    A payload that is not event-shaped is returned as it is, for validation to refuse. ``nul=False``: the
    caller knows no string holds a NUL (the raw JSON has no ``\\u0000``), so the walk is skipped."""
    cleaned: list[str] = []
    out: dict[str, Any] = _without_nul(data, "", cleaned) if nul else dict(data)
    replaced: dict[str, str] = {}
    received = _instant(out, "received_at")
    _instant(out, "time")
    if received is not None:
        sent = _parsed(out.get("sent_at"))
        if sent is not None and not plausible(sent, received):
            replaced["sent_at"] = str(out["sent_at"])[:64]
            out["sent_at"] = out["received_at"]
        elif sent is not None:
            _instant(out, "sent_at")
        call = out.get("call")
        if isinstance(call, dict):
            for bound in ("window_start", "window_end"):
                when = _parsed(call.get(bound))
                if when is not None and not plausible(when, received + SCHEDULE_SLACK):
                    replaced[f"call.{bound}"] = str(call.pop(bound))[:64]
                elif when is not None:
                    _instant(call, bound)
    if cleaned or replaced:
        previous = out["sanitized"] if isinstance(out.get("sanitized"), dict) else {}
        out["sanitized"] = {
            "cleaned": sorted({*previous.get("cleaned", []), *cleaned})[:64],
            "replaced": {**previous.get("replaced", {}), **replaced},
        }
    return out


def without_nul(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with NUL removed from every string and key (for the other schemas on the bus)."""
    out: dict[str, Any] = _without_nul(data, "", [])
    return out


def _without_nul(value: Any, path: str, cleaned: list[str]) -> Any:
    if isinstance(value, str):
        if "\x00" in value:
            cleaned.append(path)
            return value.replace("\x00", "")
        return value
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                key = key.replace("\x00", "")
                cleaned.append(f"{path}.{key}" if path else key)
            out[key] = _without_nul(item, f"{path}.{key}" if path else str(key), cleaned)
        return out
    if isinstance(value, list):
        return [_without_nul(item, f"{path}[{n}]", cleaned) for n, item in enumerate(value)]
    return value


def _parsed(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        return _DATETIME.validate_python(value)
    except ValidationError:
        return None  # not a timestamp at all: validation names it


def _instant(holder: dict[str, Any], name: str) -> datetime | None:
    """``holder[name]`` as an aware UTC instant, written back as such (a time without an offset is read as
    UTC, as ISO 8601 APIs mean it); ``InvalidEvent`` if it cannot be converted to UTC at all."""
    value = holder.get(name)
    when = _parsed(value)
    if when is None:
        return None
    utc = as_utc(when)
    if utc is None:
        raise InvalidEvent(f"{name}: {str(value)[:64]} cannot be converted to UTC")
    if when.tzinfo is None:
        holder[name] = utc.isoformat()
    return utc


def json_object(raw: bytes, refused: type[InvalidEvent] = InvalidEvent) -> dict[str, Any]:
    """A record's JSON object, or ``refused`` (an ``InvalidEvent``) saying why not."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise refused(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise refused("not a JSON object")
    return data


def versioned_object(raw: bytes, supported: frozenset[int] = SUPPORTED_SCHEMA_VERSIONS) -> dict[str, Any]:
    """A JSON object of a schema version we know, or ``InvalidEvent`` saying why not."""
    data = json_object(raw)
    version = data.get("schema_version")
    if version not in supported:
        raise UnsupportedSchemaVersion(f"unsupported schema_version {version!r}")
    return data


def decode_event(raw: bytes) -> ConversationEvent:
    """Parse, sanitize and validate; raise ``InvalidEvent`` (with a human-readable reason) on anything else.
    Sanitizing here too means an event from an older connector is as safe to store as a new one's; an event with
    nothing to sanitize (the usual one) is validated once and not walked."""
    nul = b"\\u0000" in raw
    if not nul:
        try:
            event = ConversationEvent.model_validate(versioned_object(raw))
        except ValidationError:
            pass  # sanitizing may not mend it either: the error is reported below
        else:
            if storable_times(event):
                return event
    data = sanitize(versioned_object(raw), nul=nul)
    try:
        return ConversationEvent.model_validate(data)
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise InvalidEvent(f"invalid event: {errors}") from exc
