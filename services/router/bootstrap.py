"""The router's composition root: builds the real or in-memory adapters from settings and wires them to the
handlers. Nothing is connected at import time; ``Router.start`` connects, ``Router.stop`` drains and closes."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import orjson

from services.router.adapters.db.api_keys import KeyVerifier, generate_key, store_key
from services.router.adapters.db.migrate import upgrade
from services.router.adapters.db.seed import DEMO_TENANT, seed_demo
from services.router.adapters.db.unit_of_work import SqlRepository
from services.router.adapters.feeds import FeedHub
from services.router.adapters.jwt_tokens import JwtVerifier
from services.router.adapters.webhooks import WebhookDispatcher
from services.router.domain.rate_limits import RateLimiter
from services.router.handlers.agent_commands import AgentCommands
from services.router.handlers.command_log import Command, CommandApplier, RoutingCommandLog, Waiters, forget_old
from services.router.handlers.customer_commands import CustomerCommands
from services.router.handlers.deadletters import DeadLetters
from services.router.handlers.ingest import ContextStage
from services.router.handlers.metrics import ROUTING_PARTITIONS
from services.router.handlers.outbox import OutboxRelay
from services.router.handlers.ports import Clock
from services.router.handlers.replies import ReplyCommands, StatusStage
from services.router.handlers.routing_owner import RoutingStates
from services.router.handlers.slas import SlaClock
from services.router.handlers.surveys import Surveys
from shared.bus import Bus, Record
from shared.bus_kafka import KafkaBus
from shared.bus_memory import MemoryBus
from shared.consumer_loop import consume
from shared.events import utcnow
from shared.settings import Settings
from shared.store import Database
from shared.tasks import drain
from shared.topics import Topics

log = logging.getLogger(__name__)


def make_bus(settings: Settings) -> Bus:
    if settings.kafka_bootstrap:
        return KafkaBus(
            settings.kafka_bootstrap,
            client_id=settings.kafka_client_id,
            partitions=settings.kafka_partitions,
            topics=Topics(settings.topic_prefix).all(),
        )
    return MemoryBus()


@dataclass
class Router:
    settings: Settings
    db: Database
    bus: Bus
    clock: Clock
    repo: SqlRepository = field(init=False)
    relay: OutboxRelay = field(init=False)
    stage: ContextStage = field(init=False)
    commands: RoutingCommandLog = field(init=False)  # what the API calls: through the tenant's owner
    executor: AgentCommands = field(init=False)  # what the owner runs
    applier: CommandApplier = field(init=False)
    routing: RoutingStates = field(init=False)
    customers: CustomerCommands = field(init=False)
    replies: ReplyCommands = field(init=False)
    statuses: StatusStage = field(init=False)
    hub: FeedHub = field(init=False)
    sla: SlaClock = field(init=False)
    surveys: Surveys = field(init=False)
    deadletters: DeadLetters = field(init=False)
    keys: KeyVerifier = field(init=False)
    tokens: JwtVerifier = field(init=False)
    limiter: RateLimiter = field(init=False)
    instance_id: str = field(init=False)
    topics: Topics = field(init=False)
    admin_key: str | None = None
    webhooks: WebhookDispatcher | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    ready: bool = False
    _feeds_joined: asyncio.Event = field(default_factory=asyncio.Event)
    _webhooks_joined: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.instance_id = self.settings.instance_id or f"router-{uuid.uuid4().hex[:8]}"
        self.topics = Topics(self.settings.topic_prefix)
        self.repo = SqlRepository(self.db)
        self.relay = OutboxRelay(self.repo, self.bus)
        self.routing = RoutingStates(self.topics)
        self.stage = ContextStage(
            self.repo,
            self.bus,
            self.relay,
            self.clock,
            self.topics,
            timedelta(hours=self.settings.reopen_window_hours),
            self.routing,
        )
        self.customers = CustomerCommands(self.repo, self.relay, self.clock, self.topics)
        self.replies = ReplyCommands(self.repo, self.relay, self.clock, self.topics)
        self.statuses = StatusStage(self.repo, self.bus, self.topics)
        self.executor = AgentCommands(self.repo, self.relay, self.clock, self.routing)
        waiters = Waiters()
        self.commands = RoutingCommandLog(self.repo, self.bus, self.topics, waiters, self.settings.command_timeout_s)
        self.applier = CommandApplier(self.repo, self.bus, self.topics, waiters, self.executor.apply)
        self.sla = SlaClock(self.repo, self.relay, self.clock, self.routing, self.settings.sla_warning_fraction)
        self.surveys = Surveys(self.replies, self.settings.public_base_url)
        for holder in (self.stage, self.executor, self.replies):
            holder.sla = self.sla
        self.stage.surveys = self.executor.surveys = self.surveys
        self.executor.survey_kind = self.settings.survey_kind
        if self.settings.erasure_key is not None:
            self.stage.erasure_key = self.customers.erasure_key = self.settings.erasure_key.get_secret_value().encode()
        self.deadletters = DeadLetters(self.repo, self.bus, self.topics, self.clock)
        self.hub = FeedHub()
        self.keys = KeyVerifier(self.db)
        self.tokens = JwtVerifier(self.settings)
        self.limiter = RateLimiter(self.settings.rate_limit_per_s, self.settings.rate_limit_burst)

    async def start(self, *, consume_events: bool = True) -> None:
        if self.settings.auto_migrate:
            await upgrade(self.db)
        await self.bus.start()
        if self.settings.seed_demo:
            await self._seed()
        await self.relay.flush()  # whatever a crash left in the outbox goes out first
        self._spawn(self._fan_in_feeds)
        await asyncio.wait_for(self._feeds_joined.wait(), 60)
        self._spawn(self._relay_periodically)
        self._spawn(self._tick_routing)
        urls = [u.strip() for u in self.settings.webhook_urls.split(",") if u.strip()]
        if urls and self.settings.webhook_secret is not None:
            self.webhooks = WebhookDispatcher(urls, self.settings.webhook_secret.get_secret_value())
            self._spawn(self._send_webhooks)
            await asyncio.wait_for(self._webhooks_joined.wait(), 60)
        if consume_events:
            self._spawn(self._consume_events)
            self._spawn(self._consume_statuses)
            self._spawn(self._consume_deadletters)
        self.ready = True
        log.info("router.started", extra={"instance": self.instance_id})

    async def stop(self) -> None:
        """Graceful: stop taking batches, finish and commit the one in flight, close connections."""
        self.ready = False
        await drain(self._tasks, self._stop)
        await self.bus.close()
        await self.db.close()
        log.info("router.stopped", extra={"instance": self.instance_id})

    def _spawn(self, run: Callable[[], Coroutine[None, None, None]]) -> None:
        self._tasks.append(asyncio.create_task(run(), name=getattr(run, "__name__", "task")))

    async def _seed(self) -> None:
        now = self.clock()
        if await seed_demo(self.db, now):
            log.info("demo.seeded", extra={"tenant": DEMO_TENANT})
        configured = self.settings.bootstrap_api_key
        self.admin_key = configured.get_secret_value() if configured else generate_key()
        await store_key(self.db, DEMO_TENANT, self.admin_key, "admin", "bootstrap", now)

    async def _consume_events(self) -> None:
        """A tenant's events and routing commands, co-partitioned: this replica is the single writer of the
        tenants on its partitions (their context and routing), until the group moves them."""
        events, commands = self.topics.events, self.topics.routing_commands

        async def handle(records: list[Record]) -> None:
            for r in records:
                if r.key:
                    self.routing.note_partition(r.key.decode(errors="replace"), r.partition)
            inbound = [r for r in records if r.topic == events]
            if inbound:
                result = await self.stage.handle(inbound)
                log.debug("batch.done", extra=asdict(result))
            await self.applier.handle([r for r in records if r.topic == commands], self.clock)

        def owned(assignment: frozenset[tuple[str, int]]) -> None:
            partitions = {p for topic, p in assignment if topic == commands}
            ROUTING_PARTITIONS.set(len(partitions))
            self.routing.retain(partitions)

        await consume(
            self.bus,
            [events, commands],
            self.settings.consumer_group,
            handle,
            self._stop,
            deadletter_topic=self.topics.deadletter,
            max_records=self.settings.consumer_batch_max,
            on_assignment=owned,
        )

    async def _send_webhooks(self) -> None:
        assert self.webhooks is not None
        try:
            await consume(
                self.bus,
                [self.topics.assignments],
                f"{self.settings.consumer_group}-webhooks",
                self.webhooks.handle,
                self._stop,
                deadletter_topic=self.topics.deadletter,
                from_beginning=False,
                joined=self._webhooks_joined,
            )
        finally:
            await self.webhooks.close()

    async def _consume_statuses(self) -> None:
        await consume(
            self.bus,
            [self.topics.status],
            f"{self.settings.consumer_group}-status",
            self._handle_statuses,
            self._stop,
            deadletter_topic=self.topics.deadletter,
        )

    async def _consume_deadletters(self) -> None:
        """Dead letters into their table, for admins to list and redrive. A dead letter this consumer cannot
        store is dead-lettered again with that reason (and so stored next time, as an unparsed record)."""
        await consume(
            self.bus,
            [self.topics.deadletter],
            f"{self.settings.consumer_group}-deadletters",
            self.deadletters.handle,
            self._stop,
            deadletter_topic=self.topics.deadletter,
        )

    async def _handle_statuses(self, records: list[Record]) -> None:
        await self.statuses.handle(records)

    async def _fan_in_feeds(self) -> None:
        async def handle(records: list[Record]) -> None:
            for record in records:
                try:
                    self.hub.publish(orjson.loads(record.value))
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    log.warning("feed.bad_record", extra={"offset": record.offset})

        # Every instance sees every assignment (own group, from now on): live only, replay comes from the DB.
        await consume(
            self.bus,
            [self.topics.assignments],
            f"feeds-{self.instance_id}",
            handle,
            self._stop,
            deadletter_topic=self.topics.deadletter,
            from_beginning=False,
            joined=self._feeds_joined,
        )

    async def _relay_periodically(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), 1.0)
            except TimeoutError:
                try:
                    await self.relay.flush()
                except Exception as exc:
                    log.warning("outbox.flush_failed", extra={"error": repr(exc)})

    async def _tick_routing(self) -> None:
        """Timers fire without traffic: every tick, tenants this replica owns whose engine has something due,
        and the SLA clocks; every ``routing_sweep_s``, a tick command on the log for tenants with expired offers
        that no replica holds in memory (their owner applies it), and old command outcomes are dropped."""
        last_sweep = 0.0
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), self.settings.routing_tick_s)
                return
            except TimeoutError:
                pass
            try:
                now = self.clock()
                for tenant_id in sorted(self.routing.cached_due(now)):
                    await self.executor.tick(tenant_id)
                if loop.time() - last_sweep >= self.settings.routing_sweep_s:
                    last_sweep = loop.time()
                    async with self.repo.unit() as u:
                        due = await u.tenants_with_due_routing(now)
                    ticks = [Command.new(t, "tick").record(self.topics) for t in due if not self.routing.is_cached(t)]
                    if ticks:
                        await self.bus.publish(ticks)
                    await forget_old(self.repo, now)
                    await self.deadletters.forget_old(timedelta(days=self.settings.deadletter_retention_days))
                    if self.settings.retention_days > 0:
                        await self.customers.apply_retention(now - timedelta(days=self.settings.retention_days))
                await self.sla.tick()
            except Exception as exc:
                log.warning("routing.tick_failed", extra={"error": repr(exc)[:300]})


def build_router(settings: Settings, *, bus: Bus | None = None, clock: Callable[[], datetime] = utcnow) -> Router:
    return Router(settings=settings, db=Database(settings.database_url), bus=bus or make_bus(settings), clock=clock)
