"""Routing events to other systems as signed HTTP webhooks (see shared/webhook_signing.py). One router replica
delivers each event (a shared consumer group); retries with backoff on network errors and 5xx, gives up on 4xx;
the Kafka offset is committed once every URL has answered or been given up on."""

from __future__ import annotations

import asyncio
import logging

import httpx

from shared.bus import Record
from shared.feed_events import decode
from shared.webhook_signing import HEADER, sign

log = logging.getLogger(__name__)


class WebhookDispatcher:
    def __init__(self, urls: list[str], secret: str, *, attempts: int = 5, backoff_s: float = 0.5) -> None:
        self.urls = urls
        self.secret = secret
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.http = httpx.AsyncClient(timeout=10)

    async def close(self) -> None:
        await self.http.aclose()

    async def handle(self, records: list[Record]) -> None:
        """Every record is decoded before any is delivered: one that fails (``InvalidEvent``) fails the batch
        before a POST, so the consume loop's split finds it and dead-letters it (this group is shared: once) and
        never re-posts what was delivered. The body is the record's bytes as produced, signed as they are."""
        events = [decode(record.value) for record in records]
        for record, event in zip(records, events, strict=True):
            await asyncio.gather(*(self._deliver(url, record.value, event.id) for url in self.urls))

    async def _deliver(self, url: str, body: bytes, event_id: str) -> None:
        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            headers = {
                "Content-Type": "application/json",
                HEADER: sign(self.secret, body),
                "Switchboard-Event-Id": event_id,
            }
            try:
                response = await self.http.post(url, content=body, headers=headers)
                if response.status_code < 400:
                    return
                if response.status_code < 500 and response.status_code != 429:
                    log.warning("webhook.refused", extra={"url": url, "status": response.status_code})
                    return
            except httpx.HTTPError as exc:
                log.info("webhook.retry", extra={"url": url, "attempt": attempt, "error": repr(exc)[:200]})
            if attempt < self.attempts:
                await asyncio.sleep(delay)
                delay *= 2
        log.warning("webhook.gave_up", extra={"url": url, "event_id": event_id})
