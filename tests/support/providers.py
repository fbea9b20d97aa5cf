"""Local stand-ins for providers' APIs (Graph, Telegram Bot API, Twilio) and an SMTP relay: they record the
exact requests our connectors make so tests can check path, auth and body as the provider expects them."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import uvicorn
from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.runtime import free_port


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    at: float = field(default_factory=time.time)  # when it arrived (Unix seconds)


class FakeProviders:
    """One HTTP server that answers like the Graph API, the Telegram Bot API and Twilio's Messages API."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.fail_next: list[int] = []  # status codes to answer with before succeeding
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: Request) -> JSONResponse:
        seen = Seen(request.method, request.url.path, {k.lower(): v for k, v in request.headers.items()})
        if request.headers.get("content-type", "").startswith("application/json"):
            seen.json = await request.json()
        else:
            seen.form = {k: str(v) for k, v in (await request.form()).items()}
        self.requests.append(seen)
        if self.fail_next:
            return JSONResponse({"error": "injected"}, status_code=self.fail_next.pop(0))
        n = len(self.requests)
        if "/bot" in seen.path:
            return JSONResponse({"ok": True, "result": {"message_id": 1000 + n}})
        if "/Calls/" in seen.path:
            return JSONResponse({"sid": seen.path.rsplit("/", 1)[-1].removesuffix(".json"), "status": "in-progress"})
        if seen.path.endswith("/Messages.json"):
            return JSONResponse({"sid": f"SM{n:032d}", "status": "queued"}, status_code=201)
        if seen.path.endswith("/messages") and "whatsapp" in str(seen.json):
            return JSONResponse({"messaging_product": "whatsapp", "messages": [{"id": f"wamid.OUT{n}"}]})
        return JSONResponse({"recipient_id": "x", "message_id": f"m_out_{n}"})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST"])])

    def basic_auth(self, seen: Seen) -> tuple[str, str]:
        user, _, password = (
            base64.b64decode(seen.headers["authorization"].removeprefix("Basic ")).decode().partition(":")
        )
        return user, password


@asynccontextmanager
async def fake_providers() -> AsyncIterator[FakeProviders]:
    fake = FakeProviders()
    server = uvicorn.Server(uvicorn.Config(fake.app(), host="127.0.0.1", port=fake.port, log_config=None))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield fake
    finally:
        server.should_exit = True
        await task


class _Relay:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 OK"


@asynccontextmanager
async def smtp_relay() -> AsyncIterator[tuple[_Relay, int]]:
    """A local SMTP server standing in for the outbound relay; it keeps what it receives."""
    relay = _Relay()
    port = free_port()
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(relay), "127.0.0.1", port)
    try:
        yield relay, port
    finally:
        server.close()
        await server.wait_closed()
