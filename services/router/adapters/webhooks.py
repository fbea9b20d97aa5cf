"""Routing events to other systems as signed HTTP webhooks (see shared/webhook_signing.py): one POST of one
queued delivery (the ``WebhookSender`` port). Whether and when it is tried again is the delivery queue's
business (``services/router/handlers/webhook_deliveries.py``); this only says what the receiver answered."""

from __future__ import annotations

import httpx

from shared.webhook_signing import HEADER, sign

EVENT_ID_HEADER = "Switchboard-Event-Id"  # the same on every attempt: receivers dedupe by it


class HttpWebhookSender:
    def __init__(self, secret: str, *, timeout_s: float = 10.0) -> None:
        self.secret = secret
        self.http = httpx.AsyncClient(timeout=timeout_s)

    async def close(self) -> None:
        await self.http.aclose()

    async def send(self, url: str, body: bytes, event_id: str) -> tuple[int | None, str | None]:
        """The body is the record's bytes as produced, signed at each attempt (the signature's timestamp must be
        recent for the receiver to accept it)."""
        headers = {"Content-Type": "application/json", HEADER: sign(self.secret, body), EVENT_ID_HEADER: event_id}
        try:
            response = await self.http.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return None, repr(exc)[:500]
        return response.status_code, None
