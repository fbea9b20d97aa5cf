"""The runtime every connector shares: ingress (dedupe, produce), dead-lettering, the outbound loop that
delivers agents' replies with retries and reports their status, and start/stop.

Idempotency: an event's id is derived from the provider's own message id (UUIDv5), so a redelivered webhook
or a re-fetched IMAP message becomes the same event; a per-process memory of recent ids means it is not even
produced twice, and the router's unique (tenant, event id) index settles what crosses instances."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from fastapi import APIRouter

from shared import tracing
from shared.bus import Bus, Outgoing, Record, deadletter
from shared.consumer_loop import consume
from shared.events import Channel, ConversationEvent, InvalidEvent, encode_event, utcnow
from shared.memory import trim_freed_memory
from shared.metrics import OUTBOUND_FAILURES, RECEIVED
from shared.outbound import DeliveryState, DeliveryStatus, OutboundMessage, decode_outbound, encode
from shared.settings import Settings
from shared.tasks import drain
from shared.topics import Topics

log = logging.getLogger(__name__)


class PermanentFailure(Exception):
    """The provider refused the reply for good (bad recipient, blocked, 4xx): do not retry, tell the agent."""


class TransientFailure(Exception):
    """Worth retrying later (network, 5xx, rate limit)."""


@dataclass(frozen=True, slots=True)
class Delivered:
    provider_message_id: str | None = None
    state: DeliveryState = DeliveryState.SENT


class Connector(Protocol):
    name: str
    outbound_channels: tuple[Channel, ...]
    # True: every instance gets every reply (web chat: the customer's socket may be on any instance)
    broadcast_outbound: bool

    def routes(self) -> APIRouter | None: ...

    async def start(self, runtime: ConnectorRuntime) -> None: ...

    async def stop(self) -> None: ...

    async def deliver(self, message: OutboundMessage) -> Delivered | None:
        """Send one reply; None when the connector reports its status later itself."""


class RecentIds:
    """A bounded memory of ids seen recently (LRU)."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, key: str) -> bool:
        return key in self._ids

    def add(self, key: str) -> None:
        self._ids[key] = None
        self._ids.move_to_end(key)
        while len(self._ids) > self.size:
            self._ids.popitem(last=False)


class ConnectorRuntime:
    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        connectors: Sequence[Connector],
        instance_id: str,
        *,
        owns_bus: bool = True,
    ) -> None:
        self.settings = settings
        self.bus = bus
        # In `switchboard dev` the connectors share the router's bus: the router starts it and closes it last,
        # after its own final batch is committed and published.
        self.owns_bus = owns_bus
        self.connectors = list(connectors)
        self.instance_id = instance_id
        self.topics = Topics(settings.topic_prefix)
        self.tenant = settings.connector_tenant
        self._seen = RecentIds()
        self._delivered = RecentIds(10_000)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._following: list[asyncio.Event] = []
        self.ready = False
        self.delivered = 0  # replies this instance handed to providers
        self.inbound = settings.connector_mode in ("all", "inbound")
        self.outbound = settings.connector_mode in ("all", "outbound")

    def event_id(self, channel: Channel | str, provider_message_id: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"switchboard:{self.tenant}:{channel}:{provider_message_id}"))

    async def ingest(self, events: Sequence[ConversationEvent]) -> int:
        """Produce new events; returns once they are durably on the bus (so the caller may acknowledge)."""
        fresh = [e for e in events if e.id not in self._seen]
        if fresh:
            trace = tracing.headers()  # the webhook's request span: the router's work continues its trace
            await self.bus.publish(
                [Outgoing(self.topics.events, encode_event(e), e.partition_key(), trace) for e in fresh]
            )
            for e in fresh:
                self._seen.add(e.id)
                RECEIVED.labels(channel=e.channel.value).inc()
        return len(fresh)

    async def reject(self, raw: bytes, reason: str, source: str) -> None:
        """A payload that verified but cannot be normalized: kept on the dead-letter topic with the reason."""
        log.warning("connector.rejected", extra={"source": source, "reason": reason})
        record = Record(source, -1, -1, None, raw)
        await self.bus.publish([deadletter(record, reason, self.topics.deadletter)])

    async def report(
        self,
        message: OutboundMessage,
        state: DeliveryState,
        *,
        provider_id: str | None = None,
        error: str | None = None,
        attempts: int = 1,
    ) -> None:
        status = DeliveryStatus(
            tenant=message.tenant,
            message_id=message.id,
            conversation_id=message.conversation_id,
            channel=message.channel,
            state=state,
            provider_message_id=provider_id,
            error=error,
            attempts=attempts,
            time=utcnow(),
        )
        await self.bus.publish([Outgoing(self.topics.status, encode(status), message.conversation_id.encode())])

    def follow(
        self, topic: str, group: str, handle: Callable[[list[Record]], Awaitable[None]], *, inbound: bool = False
    ) -> None:
        """A connector's own consumer of another topic (the voice connector follows routing decisions to put
        calls through). Runs in outbound-capable processes (and inbound ones with ``inbound``); the runtime is
        ready once it holds its partitions."""
        if not (self.outbound or (inbound and self.inbound)):
            return
        joined = asyncio.Event()
        self._following.append(joined)
        self._tasks.append(
            asyncio.create_task(
                consume(
                    self.bus,
                    [topic],
                    group,
                    handle,
                    self._stop,
                    deadletter_topic=self.topics.deadletter,
                    from_beginning=False,
                    joined=joined,
                )
            )
        )

    async def start(self) -> None:
        if self.owns_bus:
            await self.bus.start()
            # a process of its own (in `switchboard dev` the router's process trims for both)
            self._tasks.append(asyncio.create_task(trim_freed_memory(self._stop, self.settings.memory_trim_s)))
        await self.bus.ensure_topics(self.topics.all())
        joined: list[asyncio.Event] = self._following
        for connector in self.connectors:
            await connector.start(self)
            for channel in connector.outbound_channels if self.outbound else ():
                joined.append(asyncio.Event())
                self._tasks.append(asyncio.create_task(self._outbound(connector, channel, joined[-1])))
        # ready once every outbound consumer holds its partitions: nothing published from now on is missed
        await asyncio.wait_for(asyncio.gather(*(j.wait() for j in joined)), 60)
        self.ready = True
        log.info("connectors.started", extra={"connectors": [c.name for c in self.connectors]})

    async def stop(self) -> None:
        """Graceful: no new replies taken; the one in hand is finished and committed; servers closed."""
        self.ready = False
        await drain(self._tasks, self._stop)
        for connector in self.connectors:
            await connector.stop()
        if self.owns_bus:
            await self.bus.close()

    async def _outbound(self, connector: Connector, channel: Channel, joined: asyncio.Event) -> None:
        group = f"connector-{channel.value}-outbound"
        if connector.broadcast_outbound:
            group = f"{group}-{self.instance_id}"

        async def handle(records: list[Record]) -> None:
            for record in records:
                await self._deliver(connector, record)

        # Small batches: a reply is committed right after it is delivered, so a crash repeats at most one.
        await consume(
            self.bus,
            [self.topics.outbound(channel.value)],
            group,
            handle,
            self._stop,
            deadletter_topic=self.topics.deadletter,
            max_records=1,
            from_beginning=not connector.broadcast_outbound,
            joined=joined,
        )

    async def _deliver(self, connector: Connector, record: Record) -> None:
        try:
            message = decode_outbound(record.value)
        except InvalidEvent as exc:
            await self.bus.publish([deadletter(record, exc.reason, self.topics.deadletter)])
            return
        if message.id in self._delivered:
            return
        delay = self.settings.outbound_backoff_s
        for attempt in range(1, self.settings.outbound_max_attempts + 1):
            try:
                result = await connector.deliver(message)
            except PermanentFailure as exc:
                log.warning(
                    "outbound.failed",
                    extra={"message_id": message.id, "channel": message.channel, "error": str(exc)[:200]},
                )
                await self.report(message, DeliveryState.FAILED, error=str(exc)[:1000], attempts=attempt)
                self._delivered.add(message.id)
                OUTBOUND_FAILURES.labels(channel=message.channel.value).inc()
                return
            except TransientFailure as exc:
                log.info(
                    "outbound.retry", extra={"message_id": message.id, "attempt": attempt, "error": str(exc)[:200]}
                )
                if attempt == self.settings.outbound_max_attempts:
                    await self.report(message, DeliveryState.FAILED, error=f"gave up: {exc}"[:1000], attempts=attempt)
                    self._delivered.add(message.id)
                    OUTBOUND_FAILURES.labels(channel=message.channel.value).inc()
                    return
                await asyncio.sleep(delay)
                delay *= 2
                continue
            self._delivered.add(message.id)
            self.delivered += 1
            if result is not None:
                await self.report(message, result.state, provider_id=result.provider_message_id, attempts=attempt)
            return
