"""Web chat over WebSocket (``/chat/ws``), for the chat widget.

Frames are JSON. Server → client: ``welcome`` {visitor_token}, ``ack`` {id}, ``reply`` {id, text, at},
``error`` {detail}. Client → server: ``message`` {id, text, name?, email?} where ``id`` is the client's own
message id (a resend after a reconnect is the same event), ``typing`` (optional, ignored).

A visitor keeps its identity across reconnects with the signed ``visitor_token`` it was given
(``?token=``), and resumes with ``?last_seen=<reply id>``: replies after it are replayed, each once. Every
chat instance consumes every reply (the visitor's socket may be on any of them) and keeps the recent ones
per visitor for such resumes. Pre-chat name and email travel as unverified claims."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections import defaultdict, deque
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.connectors.runtime import ConnectorRuntime, Delivered
from shared import chat_tokens
from shared.bus import BusUnavailable
from shared.events import Channel, Claim, Content, ConversationEvent, IdentityKind, Sender, utcnow
from shared.outbound import DeliveryState, OutboundMessage
from shared.settings import Settings

REPLAY_PER_VISITOR = 200


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    id: str = Field(min_length=1, max_length=64)
    text: str = Field(min_length=1, max_length=20_000)
    name: str | None = Field(None, max_length=256)
    email: str | None = Field(None, max_length=320)


class ChatConnector:
    name = "chat"
    outbound_channels = (Channel.CHAT,)
    broadcast_outbound = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        secret = settings.chat_token_secret.get_secret_value() if settings.chat_token_secret else None
        self._secret = (secret or secrets.token_hex(32)).encode()
        self.runtime: ConnectorRuntime | None = None
        self._sockets: dict[str, set[WebSocket]] = defaultdict(set)
        self._recent: dict[str, deque[OutboundMessage]] = defaultdict(lambda: deque(maxlen=REPLAY_PER_VISITOR))
        self._reported: set[str] = set()

    async def start(self, runtime: ConnectorRuntime) -> None:
        self.runtime = runtime

    async def stop(self) -> None:
        for sockets in list(self._sockets.values()):
            for ws in list(sockets):
                await ws.close(code=1001)

    # -- visitor tokens ------------------------------------------------------------------------------------
    def issue_token(self, visitor_id: str) -> str:
        return chat_tokens.issue(self._secret, visitor_id)

    def visitor_of(self, token: str) -> str | None:
        return chat_tokens.visitor_of(self._secret, token)

    # -- the socket -----------------------------------------------------------------------------------------
    def routes(self) -> APIRouter:
        router = APIRouter()

        @router.websocket("/chat/ws")
        async def chat(ws: WebSocket, token: str | None = None, last_seen: str | None = None) -> None:
            visitor = self.visitor_of(token) if token else f"v-{uuid.uuid4().hex}"
            await ws.accept()
            if visitor is None:
                await ws.close(code=4401, reason="invalid visitor token")
                return
            await ws.send_json({"type": "welcome", "visitor_token": self.issue_token(visitor)})
            self._sockets[visitor].add(ws)
            try:
                await self._replay(ws, visitor, last_seen)
                profile: dict[str, str] = {}
                while True:
                    frame = await ws.receive_json()
                    await self._on_frame(ws, visitor, frame, profile)
            except WebSocketDisconnect:
                pass
            finally:
                self._sockets[visitor].discard(ws)
                if not self._sockets[visitor]:
                    del self._sockets[visitor]

        return router

    async def _replay(self, ws: WebSocket, visitor: str, last_seen: str | None) -> None:
        recent = list(self._recent.get(visitor, ()))
        ids = [m.id for m in recent]
        start = ids.index(last_seen) + 1 if last_seen in ids else 0
        for message in recent[start:]:
            await self._push(ws, message)
            await self._delivered(message)

    async def _on_frame(self, ws: WebSocket, visitor: str, frame: Any, profile: dict[str, str]) -> None:
        if not isinstance(frame, dict) or frame.get("type") != "message":
            return  # typing indicators and unknown frames are fine to ignore
        try:
            msg = ChatMessageIn.model_validate(frame)
        except ValidationError as exc:
            await ws.send_json({"type": "error", "detail": exc.errors()[0]["msg"], "id": frame.get("id")})
            return
        if msg.name:
            profile["name"] = msg.name
        if msg.email:
            profile["email"] = msg.email
        assert self.runtime is not None
        now = utcnow()
        claims = [Claim(kind=IdentityKind.EMAIL, value=profile["email"], verified=False)] if "email" in profile else []
        event = ConversationEvent(
            id=self.runtime.event_id(Channel.CHAT, f"{visitor}:{msg.id}"),
            source="switchboard/chat",
            time=now,
            tenant=self.runtime.tenant,
            channel=Channel.CHAT,
            channel_message_id=msg.id,
            sender=Sender(
                kind=IdentityKind.CHAT_VISITOR, value=visitor, display_name=profile.get("name"), claims=claims
            ),
            content=Content(text=msg.text),
            received_at=now,
        )
        try:
            await self.runtime.ingest([event])
        except BusUnavailable:
            await ws.send_json({"type": "error", "detail": "temporarily unavailable, resend", "id": msg.id})
            return
        await ws.send_json({"type": "ack", "id": msg.id})

    async def _push(self, ws: WebSocket, message: OutboundMessage) -> None:
        frame: dict[str, object] = {
            "type": "reply",
            "id": message.id,
            "text": message.text,
            "at": message.created_at.isoformat(),
        }
        if message.survey is not None:
            frame["survey"] = message.survey.model_dump(mode="json")  # the widget renders it as a rating card
        await ws.send_json(frame)

    async def _delivered(self, message: OutboundMessage) -> None:
        if message.id not in self._reported and self.runtime is not None:
            self._reported.add(message.id)
            await self.runtime.report(message, DeliveryState.DELIVERED)

    async def deliver(self, message: OutboundMessage) -> Delivered | None:
        visitor = message.to.value
        recent = self._recent[visitor]
        if any(m.id == message.id for m in recent):
            return None
        recent.append(message)
        sockets = list(self._sockets.get(visitor, ()))
        results = await asyncio.gather(*(self._push(ws, message) for ws in sockets), return_exceptions=True)
        if any(r is None for r in results):
            await self._delivered(message)
        return None  # reported above when a socket took it, or on the visitor's next connection
