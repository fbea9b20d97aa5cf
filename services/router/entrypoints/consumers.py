"""What the router consumes, each topic with its consumer group and failure policy (``shared/consumer_loop.py``:
a poison record is dead-lettered, an unavailable broker or database retried)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import SpanKind

from services.router.adapters.feeds import FeedHub
from services.router.handlers.deadletters import DeadLetters
from services.router.handlers.replies import StatusStage
from services.router.handlers.tenant_log import TenantLog
from services.router.handlers.webhook_deliveries import WebhookDeliveries
from shared import feed_events, tracing
from shared.bus import Bus, Record
from shared.consumer_loop import Handler, consume, decodable
from shared.topics import Topics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Consumers:
    bus: Bus
    topics: Topics
    group: str  # SWITCHBOARD_CONSUMER_GROUP: the router's own groups are named after it
    stop: asyncio.Event

    async def _consume(self, topics: list[str], group: str, handle: Handler, **options: Any) -> None:
        """Every consumer of the router dead-letters to the one dead-letter topic and stops with the router."""
        await consume(self.bus, topics, group, handle, self.stop, deadletter_topic=self.topics.deadletter, **options)

    async def tenant_log(self, handler: TenantLog, batch_max: int, lanes: int = 1, lane_records: int = 1) -> None:
        """Events and routing commands of the tenants this replica owns (one writer per tenant), a batch's
        partitions in up to ``lanes`` concurrent transactions, one per ``lane_records`` records."""
        await self._consume(
            [self.topics.events, self.topics.routing_commands],
            self.group,
            handler.handle,
            max_records=batch_max,
            on_assignment=handler.owned,
            lanes=lanes,
            lane_records=lane_records,
        )

    async def statuses(self, stage: StatusStage) -> None:
        """Delivery statuses of replies, from the connectors."""
        await self._consume([self.topics.status], f"{self.group}-status", stage.handle)

    async def deadletters(self, handler: DeadLetters) -> None:
        """Dead letters into their table, for admins to list and redrive. A dead letter this consumer cannot
        store is dead-lettered again with that reason (and so stored next time, as an unparsed record)."""
        await self._consume([self.topics.deadletter], f"{self.group}-deadletters", handler.handle)

    async def webhooks(self, deliveries: WebhookDeliveries, joined: asyncio.Event) -> None:
        """Routing events into the webhook delivery queue (one shared group: each queued once per receiver). The
        offset is committed once the batch is queued in the database; the delivery loop sends it from there."""
        await self._consume(
            [self.topics.assignments],
            f"{self.group}-webhooks",
            deliveries.accept,
            from_beginning=False,
            joined=joined,
        )

    async def live_feeds(self, hub: FeedHub, instance_id: str, joined: asyncio.Event) -> None:
        """Every instance sees every feed event (a group of its own, from now on) for the consoles connected to
        it: live only, a reconnect replays from the database."""

        async def handle(records: list[Record]) -> None:
            # A console connected here is what a record is decoded for; while tracing, every record is, so the
            # last hop of each message's trace (onto the feed hub) is recorded whoever listens.
            watched = records if tracing.enabled() else [r for r in records if hub.watches(r.key)]
            # Logged and skipped, not dead-lettered: every instance reads with a group of its own, so each would
            # file a copy; the webhook dispatcher's shared group dead-letters it once.
            for event in decodable(watched, feed_events.decode, log, "feed.bad_record"):
                caused = getattr(event, "traceparent", None) if tracing.enabled() else None
                if caused:  # the last hop of the message's trace: onto the agent's live feed
                    parent = tracing.context_of({"traceparent": caused})
                    with tracing.tracer.start_as_current_span(
                        "switchboard.feed", context=parent, kind=SpanKind.CONSUMER
                    ):
                        hub.publish(event)
                else:
                    hub.publish(event)

        await self._consume(
            [self.topics.assignments], f"feeds-{instance_id}", handle, from_beginning=False, joined=joined
        )
