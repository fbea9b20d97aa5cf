"""In-app / REST ingress: apps and frontends post a customer's message; it becomes a conversation event on
the bus and the router takes it from there. Answers 202 once the event is durably on the bus."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from starlette.exceptions import HTTPException

from services.router.adapters.db.api_keys import Principal
from services.router.entrypoints.http.deps import AppPrincipal, RouterDep
from services.router.entrypoints.http.params import Identifier, MessageInstant, ScheduleInstant
from services.router.entrypoints.http.services import Services
from shared.constant_time import same
from shared.events import (
    Call,
    CallStatus,
    Channel,
    Claim,
    Content,
    ConversationEvent,
    IdentityKind,
    Sender,
    event_id_for,
    new_event_id,
)

router = APIRouter(tags=["messages"])


class CustomerIn(BaseModel):
    # Unknown fields are refused (422 naming the field): a misspelt "languge" would otherwise be lost unnoticed.
    model_config = ConfigDict(extra="forbid")

    external_id: Annotated[Identifier, Field(min_length=1, max_length=256, description="The app's own user id.")]
    name: Annotated[str, Field(max_length=256)] | None = None
    email: Annotated[Identifier, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    phone: Annotated[Identifier, Field(max_length=32)] | None = None
    tier: (
        Annotated[
            Identifier,
            Field(max_length=16, description="standard, silver, gold or platinum (trusted only with user_hash)"),
        ]
        | None
    ) = None
    language: (
        Annotated[Identifier, Field(max_length=35, description="BCP 47 tag (trusted only with user_hash)")] | None
    ) = None
    attributes: (
        Annotated[
            dict[Identifier, Annotated[str, Field(max_length=256)]],
            Field(
                max_length=30,
                description="Custom profile facts. Keys holding U+0000 are refused; values are cleaned of it.",
            ),
        ]
        | None
    ) = None
    owner_agent_id: (
        Annotated[
            Identifier,
            Field(
                max_length=64,
                description="The agent who owns this customer (their named representative), preferred by routing in "
                "every queue they serve; trusted only with user_hash, ignored if it names no agent of the tenant.",
            ),
        ]
        | None
    ) = None
    user_hash: (
        Annotated[
            str,
            Field(
                max_length=128,
                description="Hex HMAC-SHA256 of external_id keyed with the app's identity secret: marks the "
                "identity, and the email/phone it carries, as verified.",
            ),
        ]
        | None
    ) = None


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer: CustomerIn
    text: Annotated[
        str,
        Field(
            min_length=1,
            description="The message. NUL characters (U+0000) are removed, and the message records that it was.",
        ),
    ]
    idempotency_key: Annotated[Identifier, Field(min_length=1, max_length=256)] | None = Field(
        None,
        description="Retries with the same key become the same event (also as the Idempotency-Key header).",
    )
    sent_at: MessageInstant = Field(
        None, description="When the customer sent it (ISO 8601 with offset; since 2000, at most a day ahead)."
    )


class MessageAccepted(BaseModel):
    event_id: str
    status: str = "accepted"


@router.post("/v1/messages", status_code=202, response_model=MessageAccepted)
async def post_message(
    body: MessageIn,
    router_: RouterDep,
    principal: AppPrincipal,
    idempotency_key: Annotated[
        str | None, Header(max_length=256, description="Retries with the same key become the same event.")
    ] = None,
) -> MessageAccepted:
    """A customer's message from your app or frontend. It becomes a conversation event: the router finds or
    creates the customer (by `external_id`, and the email and phone given), opens or continues their
    conversation and routes it to an agent. Answers 202 with the event id once the event is durably on the
    bus. The text is limited to `SWITCHBOARD_MAX_TEXT_CHARS` characters (422 naming `text` beyond)."""
    if len(body.text) > router_.settings.max_text_chars:
        raise _too_long("text", router_.settings.max_text_chars)
    return await accept_message(router_, principal, body, idempotency_key)


async def accept_message(
    router_: Services, principal: Principal, body: MessageIn, idempotency_key: str | None
) -> MessageAccepted:
    """A valid message from an app's key, admitted: the event it becomes, answered once it is on the bus. The
    route's work after the framework's, shared with ``fast_ingest.FastIngest``."""
    verified = _verified(body.customer, router_.settings.inapp_identity_secret)
    key = idempotency_key or body.idempotency_key
    event_id = event_id_for(principal.tenant_id, key) if key else new_event_id()
    claims = [
        Claim(kind=kind, value=value, verified=verified)
        for kind, value in (
            (IdentityKind.EMAIL, body.customer.email),
            (IdentityKind.PHONE, body.customer.phone),
        )
        if value
    ]
    return await _accept(
        router_,
        principal,
        event_id,
        "in_app",
        channel=Channel.IN_APP,
        channel_message_id=key,
        sender=_app_user(body.customer, verified, claims),
        content=Content(text=body.text),
        sent_at=body.sent_at,
    )


async def _accept(
    router_: Services, principal: Principal, event_id: str, source: str, **fields: Any
) -> MessageAccepted:
    """The app's event, from this API key, received now: answered once it is durably on the bus."""
    now = router_.clock()
    event = ConversationEvent(
        id=event_id,
        source=f"switchboard/{source}/{principal.key_prefix}",
        time=now,
        tenant=principal.tenant_id,
        received_at=now,
        **fields,
    )
    await router_.ingress.accept(event)
    return MessageAccepted(event_id=event_id)


def _too_long(field: str, limit: int) -> RequestValidationError:
    """A limit the tenant's settings set, refused like the schema's own limits: 422, the field named."""
    msg = f"String should have at most {limit} characters"
    return RequestValidationError(
        [{"type": "string_too_long", "loc": ("body", field), "msg": msg, "ctx": {"max_length": limit}}]
    )


def _app_user(customer: CustomerIn, verified: bool, claims: list[Claim]) -> Sender:
    """The customer as the tenant's app knows them; tier and language go along as attributes (for routing)."""
    return Sender(
        kind=IdentityKind.APP_USER,
        value=customer.external_id,
        verified=verified,
        display_name=customer.name,
        claims=claims,
        attributes=_attributes(customer),
    )


def _attributes(customer: CustomerIn) -> dict[str, str]:
    attrs = dict(customer.attributes or {})
    if customer.tier:
        attrs["tier"] = customer.tier
    if customer.language:
        attrs["language"] = customer.language
    if customer.owner_agent_id:
        attrs["owner_agent_id"] = customer.owner_agent_id
    return attrs


def _verified(customer: CustomerIn, secret_setting: SecretStr | None) -> bool:
    secret = secret_setting.get_secret_value() if secret_setting else None
    if customer.user_hash is None or not secret:
        return False
    external_id = customer.external_id.encode("utf-8", "surrogatepass")  # JSON may carry a lone surrogate
    expected = hmac.new(secret.encode(), external_id, hashlib.sha256).hexdigest()
    if not same(expected, customer.user_hash.lower()):
        raise HTTPException(403, "user_hash does not match external_id.")
    return True


class CallbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer: CustomerIn
    window_start: ScheduleInstant = Field(None, description="Call not before (ISO 8601 with zone).")
    window_end: ScheduleInstant = Field(None, description="Call not after.")
    note: Annotated[str, Field(max_length=1_000)] | None = None
    idempotency_key: Annotated[Identifier, Field(min_length=1, max_length=256)] | None = None


@router.post("/v1/callbacks", status_code=202, response_model=MessageAccepted, tags=["voice"])
async def request_callback(body: CallbackIn, router_: RouterDep, principal: AppPrincipal) -> MessageAccepted:
    """The customer asks to be called back (optionally within a window): routed like a call (an agent's
    voice capacity), and the assigned agent's feed shows a ``callback`` task with the number to call."""
    if not body.customer.phone:
        raise HTTPException(422, "customer.phone is needed to call back.")
    if body.window_start and body.window_end and body.window_end <= body.window_start:
        raise HTTPException(422, "window_end must be after window_start.")
    verified = _verified(body.customer, router_.settings.inapp_identity_secret)
    event_id = (
        event_id_for(principal.tenant_id, f"callback:{body.idempotency_key}")
        if body.idempotency_key
        else new_event_id()
    )
    window = ""
    if body.window_start or body.window_end:
        start = body.window_start.isoformat() if body.window_start else "now"
        end = body.window_end.isoformat() if body.window_end else "any time"
        window = f" between {start} and {end}"
    text = f"Callback requested: call {body.customer.phone}{window}" + (f". {body.note}" if body.note else "")
    return await _accept(
        router_,
        principal,
        event_id,
        "callbacks",
        channel=Channel.VOICE,
        thread_ref="callback",
        sender=_app_user(
            body.customer, verified, [Claim(kind=IdentityKind.PHONE, value=body.customer.phone, verified=verified)]
        ),
        content=Content(text=text),
        call=Call(status=CallStatus.CALLBACK_REQUESTED, window_start=body.window_start, window_end=body.window_end),
    )
