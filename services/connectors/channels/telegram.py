"""Telegram Bot API: the webhook (``/webhooks/telegram``) checks X-Telegram-Bot-Api-Secret-Token; messages,
edited messages and media (as metadata) are normalized; replies go out with sendMessage."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException

from services.connectors.channels.provider_api import ProviderApiConnector
from services.connectors.runtime import Delivered, PermanentFailure
from services.connectors.signatures import telegram_valid
from shared.events import Attachment, Channel, Content, ConversationEvent, IdentityKind, Sender, utcnow
from shared.outbound import OutboundMessage

MEDIA = ("photo", "document", "audio", "voice", "video", "video_note", "sticker", "animation")


def normalize(update: dict[str, Any], tenant: str, event_id: Any) -> ConversationEvent | None:
    """One update → one event, or None for updates that carry no customer message (e.g. a bot's own)."""
    if "update_id" not in update:
        raise ValueError("not a Telegram update")
    message = update.get("message") or update.get("edited_message")
    if message is None:
        return None  # channel posts, callback queries, member changes...
    user = message.get("from") or {}
    if user.get("is_bot"):
        return None
    chat_id = message["chat"]["id"]
    edited = "edit_date" in message and "edited_message" in update
    # An edit is a new event about the same message: its key includes the edit time.
    provider_id = f"{chat_id}:{message['message_id']}" + (f":edit:{message['edit_date']}" if edited else "")
    attachments = []
    for kind in MEDIA:
        if kind in message:
            media = message[kind][-1] if kind == "photo" else message[kind]  # photo: sizes, largest last
            attachments.append(
                Attachment(
                    name=media.get("file_name", kind),
                    content_type=media.get("mime_type", f"{kind}/*"),
                    size=int(media.get("file_size", 0)),
                    ref=f"telegram-file:{media['file_id']}",
                )
            )
    text = message.get("text") or message.get("caption") or ""
    if edited:
        text = f"(edited) {text}"
    name = " ".join(p for p in (user.get("first_name"), user.get("last_name")) if p) or user.get("username")
    now = utcnow()
    return ConversationEvent(
        id=event_id(Channel.TELEGRAM, provider_id),
        source="switchboard/telegram",
        time=now,
        tenant=tenant,
        channel=Channel.TELEGRAM,
        channel_message_id=provider_id,
        thread_ref=str(chat_id),
        sender=Sender(
            kind=IdentityKind.TELEGRAM_ID,
            value=str(user.get("id", chat_id)),
            verified=True,
            display_name=name,
            attributes={"language": user["language_code"]} if "language_code" in user else {},
        ),
        content=Content(text=text, attachments=attachments),
        sent_at=datetime.fromtimestamp(message.get("edit_date") or message["date"], UTC),
        received_at=now,
    )


class TelegramConnector(ProviderApiConnector):
    name = "telegram"
    provider = "telegram"
    outbound_channels = (Channel.TELEGRAM,)

    def base_url(self) -> str:
        return self.settings.telegram_api_base_url

    def routes(self) -> APIRouter:
        router = APIRouter(tags=["webhooks"])

        @router.post("/webhooks/telegram")
        async def receive(request: Request) -> dict[str, str]:
            secret = self.settings.telegram_secret_token
            header = request.headers.get("x-telegram-bot-api-secret-token")
            if secret is None or header is None:
                raise HTTPException(401, "missing X-Telegram-Bot-Api-Secret-Token")
            if not telegram_valid(secret.get_secret_value(), header):
                raise HTTPException(403, "bad X-Telegram-Bot-Api-Secret-Token")
            raw = await request.body()
            assert self.runtime is not None
            try:
                event = normalize(orjson.loads(raw), self.runtime.tenant, self.runtime.event_id)
            except (ValueError, KeyError, TypeError) as exc:
                await self.runtime.reject(raw, f"telegram: cannot normalize: {exc!r}"[:500], "webhook:telegram")
                return {"status": "dead-lettered"}
            if event is not None:
                await self.runtime.ingest([event])
            return {"status": "ok"}

        return router

    async def deliver(self, message: OutboundMessage) -> Delivered:
        token = self.settings.telegram_bot_token
        if token is None:
            raise PermanentFailure("no Telegram bot token configured")
        chat_id = message.thread_ref or message.to.value
        r = await self.send(
            f"/bot{token.get_secret_value()}/sendMessage", json={"chat_id": chat_id, "text": message.text}
        )
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        if not body.get("ok"):
            raise PermanentFailure(f"telegram: {body.get('description', r.text[:200])}")
        return Delivered(str(body["result"]["message_id"]))
