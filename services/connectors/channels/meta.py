"""Meta platforms: Messenger, Instagram and the WhatsApp Cloud API share one webhook (``/webhooks/meta``).

Inbound: GET is the hub.challenge handshake; POST is verified with X-Hub-Signature-256 over the raw body,
then normalized. Echoes of our own messages, delivery and read receipts, and WhatsApp status callbacks are
acknowledged and ignored. Outbound: the Send API (Messenger/Instagram) and the Cloud API (WhatsApp): free
text, or an approved template, which the router sends once WhatsApp's 24-hour customer service window has
closed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from starlette.exceptions import HTTPException

from services.connectors.channels.provider_api import ProviderApiConnector
from services.connectors.runtime import Delivered, PermanentFailure
from services.connectors.signatures import meta_valid
from shared.constant_time import same
from shared.events import Attachment, Channel, Content, ConversationEvent, IdentityKind, Sender, utcnow
from shared.outbound import OutboundMessage, WhatsAppTemplate

EventId = Any  # (channel, provider id) -> event id


def _ts(value: Any, millis: bool) -> datetime | None:
    try:
        seconds = float(value) / (1000 if millis else 1)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(seconds, UTC)


def normalize(payload: dict[str, Any], tenant: str, event_id: EventId) -> list[ConversationEvent]:
    """Every customer message in one webhook delivery; raises ValueError on a shape we cannot read."""
    obj = payload.get("object")
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise ValueError("no entry list")
    if obj in ("page", "instagram"):
        channel = Channel.MESSENGER if obj == "page" else Channel.INSTAGRAM
        return [
            e
            for entry in entries
            for m in entry.get("messaging", [])
            if (e := _messaging(m, channel, tenant, event_id))
        ]
    if obj == "whatsapp_business_account":
        out: list[ConversationEvent] = []
        for entry in entries:
            for change in entry.get("changes", []):
                value = change.get("value", {})
                names = {c.get("wa_id"): c.get("profile", {}).get("name") for c in value.get("contacts", [])}
                out += [_whatsapp(m, names, tenant, event_id) for m in value.get("messages", [])]
        return out
    raise ValueError(f"unknown object {obj!r}")


def _messaging(m: dict[str, Any], channel: Channel, tenant: str, event_id: EventId) -> ConversationEvent | None:
    message = m.get("message")
    postback = m.get("postback")
    if message is None and postback is None:
        return None  # delivery, read, reaction, referral...: nothing a customer said
    if message is not None and message.get("is_echo"):
        return None  # our own outbound message, echoed back
    sender = str(m["sender"]["id"])
    kind = IdentityKind.MESSENGER_PSID if channel is Channel.MESSENGER else IdentityKind.INSTAGRAM_ID
    if message is not None:
        mid = str(message["mid"])
        text = message.get("text") or ""
        if "quick_reply" in message:
            text = text or str(message["quick_reply"].get("payload", ""))
        attachments = [
            Attachment(
                name=a.get("type", "file"),
                content_type=f"{a.get('type', 'application')}/*",
                size=0,
                ref=str(a.get("payload", {}).get("url", "")),
            )
            for a in message.get("attachments", [])
        ]
    else:
        assert postback is not None
        mid = str(postback.get("mid") or f"postback:{sender}:{m.get('timestamp')}")
        text = postback.get("title") or postback.get("payload") or ""
        attachments = []
    now = utcnow()
    return ConversationEvent(
        id=event_id(channel, mid),
        source=f"switchboard/meta/{channel.value}",
        time=now,
        tenant=tenant,
        channel=channel,
        channel_message_id=mid,
        thread_ref=str(m.get("recipient", {}).get("id", "")) or None,
        sender=Sender(kind=kind, value=sender, verified=True),
        content=Content(text=text, attachments=attachments),
        sent_at=_ts(m.get("timestamp"), millis=True),
        received_at=now,
    )


def _whatsapp(m: dict[str, Any], names: dict[Any, Any], tenant: str, event_id: EventId) -> ConversationEvent:
    kind = m.get("type")
    text = ""
    attachments: list[Attachment] = []
    if kind == "text":
        text = m["text"]["body"]
    elif kind in ("image", "audio", "video", "document", "sticker"):
        media = m[kind]
        text = media.get("caption", "")
        attachments.append(
            Attachment(
                name=media.get("filename", kind),
                content_type=media.get("mime_type", "application/octet-stream"),
                size=0,
                ref=f"whatsapp-media:{media['id']}",
            )
        )
    elif kind == "interactive":
        reply = m["interactive"].get("button_reply") or m["interactive"].get("list_reply") or {}
        text = reply.get("title", "")
    elif kind == "button":
        text = m["button"].get("text", "")
    elif kind == "location":
        loc = m["location"]
        text = f"Location: {loc.get('latitude')},{loc.get('longitude')} {loc.get('name', '')}".strip()
    else:
        text = f"[{kind} message]"
    phone = "+" + str(m["from"]).lstrip("+")
    now = utcnow()
    return ConversationEvent(
        id=event_id(Channel.WHATSAPP, m["id"]),
        source="switchboard/meta/whatsapp",
        time=now,
        tenant=tenant,
        channel=Channel.WHATSAPP,
        channel_message_id=m["id"],
        sender=Sender(kind=IdentityKind.PHONE, value=phone, verified=True, display_name=names.get(m["from"])),
        content=Content(text=text, attachments=attachments),
        sent_at=_ts(m.get("timestamp"), millis=False),
        received_at=now,
    )


def template_content(template: WhatsAppTemplate) -> dict[str, Any]:
    """A template message's part of a Cloud API send request: the approved template by name and language, its
    body variables as text parameters in order (no ``components`` for a template without variables)."""
    content: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
    if template.parameters:
        content["components"] = [
            {"type": "body", "parameters": [{"type": "text", "text": p} for p in template.parameters]}
        ]
    return {"type": "template", "template": content}


class MetaConnector(ProviderApiConnector):
    name = "meta"
    provider = "graph api"
    outbound_channels = (Channel.MESSENGER, Channel.INSTAGRAM, Channel.WHATSAPP)

    def base_url(self) -> str:
        return self.settings.meta_graph_base_url

    def routes(self) -> APIRouter:
        router = APIRouter(tags=["webhooks"])
        settings = self.settings

        @router.get("/webhooks/meta", response_class=Response)
        async def handshake(
            mode: str = Query("", alias="hub.mode"),
            token: str = Query("", alias="hub.verify_token"),
            challenge: str = Query("", alias="hub.challenge", max_length=256),
        ) -> Response:
            """Meta's subscription handshake: echo hub.challenge when hub.verify_token matches."""
            expected = settings.meta_verify_token.get_secret_value() if settings.meta_verify_token else None
            if mode != "subscribe" or not expected or not same(token, expected):
                raise HTTPException(403, "verify token mismatch")
            return Response(challenge, media_type="text/plain")

        @router.post("/webhooks/meta")
        async def receive(request: Request) -> dict[str, str]:
            raw = await request.body()
            secret = settings.meta_app_secret.get_secret_value() if settings.meta_app_secret else None
            header = request.headers.get("x-hub-signature-256")
            if not secret or not header:
                raise HTTPException(401, "missing X-Hub-Signature-256")
            if not meta_valid(secret, raw, header):
                raise HTTPException(403, "bad X-Hub-Signature-256")
            assert self.runtime is not None
            try:
                events = normalize(orjson.loads(raw), self.runtime.tenant, self.runtime.event_id)
            except (ValueError, KeyError, TypeError) as exc:
                await self.runtime.reject(raw, f"meta: cannot normalize: {exc!r}"[:500], "webhook:meta")
                return {"status": "dead-lettered"}  # 200, so Meta does not retry it forever
            await self.runtime.ingest(events)
            return {"status": "ok"}

        return router

    async def deliver(self, message: OutboundMessage) -> Delivered:
        version = self.settings.meta_graph_version
        if message.channel is Channel.WHATSAPP:
            token = self.settings.whatsapp_access_token
            path = f"/{version}/{self.settings.whatsapp_phone_number_id}/messages"
            body: dict[str, Any] = {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": message.to.value.lstrip("+"),
                **(
                    template_content(message.template)
                    if message.template is not None
                    else {"type": "text", "text": {"preview_url": False, "body": message.text}}
                ),
            }
        else:
            token = self.settings.meta_page_access_token
            path = f"/{version}/me/messages"
            body = {
                "recipient": {"id": message.to.value},
                "messaging_type": "RESPONSE",
                "message": {"text": message.text},
            }
        if token is None:
            raise PermanentFailure(f"no access token configured for {message.channel}")
        r = await self.send(path, json=body, headers={"Authorization": f"Bearer {token.get_secret_value()}"})
        data = r.json()
        provider_id = data.get("message_id") or (data.get("messages") or [{}])[0].get("id")
        return Delivered(provider_id)
