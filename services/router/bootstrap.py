"""The router's composition root: builds the real or in-memory adapters from settings and wires them to the
handlers. Nothing is connected at import time; ``RouterRuntime.start`` connects, ``RouterRuntime.stop`` drains
and closes."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta

from services.router.adapters.db.api_keys import KeyVerifier, generate_key, store_key
from services.router.adapters.db.erasure import DEFAULT_KEY
from services.router.adapters.db.migrate import upgrade
from services.router.adapters.db.seed import DEMO_TENANT, seed_demo
from services.router.adapters.db.unit_of_work import SqlStore
from services.router.adapters.feeds import FeedHub
from services.router.adapters.jwt_tokens import JwtVerifier
from services.router.adapters.language import LanguageDetector
from services.router.adapters.webhooks import HttpWebhookSender
from services.router.domain.rate_limits import RateLimiter
from services.router.domain.webhook_retry import RetryPolicy
from services.router.entrypoints import timers
from services.router.entrypoints.consumers import Consumers
from services.router.handlers.access import AccessKeys
from services.router.handlers.agent_commands import AgentCommands
from services.router.handlers.audit import AuditLog
from services.router.handlers.command_log import CommandApplier, RoutingCommandLog, Waiters
from services.router.handlers.configuration import Configuration
from services.router.handlers.customer_commands import CustomerCommands
from services.router.handlers.deadletters import DeadLetters
from services.router.handlers.follow_ups import FollowUpSender
from services.router.handlers.ingest import ContextStage
from services.router.handlers.ingress import Ingress
from services.router.handlers.outbox import OutboxRelay
from services.router.handlers.ports import Clock
from services.router.handlers.presence import PresenceWatch
from services.router.handlers.replies import ReplyCommands, StatusStage
from services.router.handlers.routing_owner import RoutingStates
from services.router.handlers.routing_timers import RoutingTimers
from services.router.handlers.slas import SlaClock
from services.router.handlers.surveys import Surveys
from services.router.handlers.tenant_log import TenantLog
from services.router.handlers.webhook_deliveries import WebhookDeliveries
from shared import tracing
from shared.bus import Bus
from shared.bus_kafka import KafkaBus
from shared.bus_memory import MemoryBus
from shared.events import utcnow
from shared.memory import trim_freed_memory
from shared.settings import Settings
from shared.store import Database
from shared.tasks import drain
from shared.topics import Topics

log = logging.getLogger(__name__)


def make_bus(settings: Settings) -> Bus:
    if settings.kafka_bootstrap:
        return KafkaBus.from_settings(settings, topics=Topics(settings.topic_prefix).all())
    return MemoryBus()


class RouterRuntime:
    """Everything one router process runs, built from settings by constructor injection: the store, the bus,
    the handlers, and the consumers and timers that drive them. Nothing else constructs a handler."""

    def __init__(self, settings: Settings, db: Database, bus: Bus, clock: Clock) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.clock = clock
        self.admin_key: str | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = False
        s = settings
        self.instance_id = s.instance_id or f"router-{uuid.uuid4().hex[:8]}"
        self.topics = topics = Topics(s.topic_prefix)
        self.repo = repo = SqlStore(db)
        self.relay = relay = OutboxRelay(repo, bus, topic_prefix=s.topic_prefix)
        self.routing = routing = RoutingStates(topics)
        erasure_key = s.erasure_key.get_secret_value().encode() if s.erasure_key else DEFAULT_KEY
        self.sla = sla = SlaClock(repo, relay, clock, routing, s.sla_warning_fraction)
        self.replies = ReplyCommands(repo, relay, clock, topics, sla)
        self.surveys = surveys = Surveys(repo, clock, self.replies, s.public_base_url)
        reopen_within = timedelta(hours=s.reopen_window_hours)
        self.stage = ContextStage(
            repo, bus, relay, clock, topics, reopen_within, routing, sla, surveys, erasure_key, LanguageDetector()
        )
        self.customers = CustomerCommands(repo, relay, clock, topics, erasure_key)
        self.statuses = StatusStage(repo, bus, topics)
        stale = timedelta(seconds=3 * s.presence_heartbeat_s)
        self.follow_ups = FollowUpSender(repo, relay, clock, routing, self.replies)
        # what the owner runs
        self.executor = AgentCommands(
            repo, relay, clock, routing, sla, surveys, s.survey_kind, stale, follow_ups=self.follow_ups
        )
        group = f"{s.topic_prefix}{s.consumer_group}"
        self.presence = PresenceWatch(
            repo,
            relay,
            clock,
            topics,
            self.instance_id,
            s.presence_grace_s,
            s.presence_offline_s,
            s.presence_heartbeat_s,
            group,
        )
        waiters = Waiters()
        # what the API calls: through the tenant's owner
        self.commands = RoutingCommandLog(repo, bus, topics, waiters, s.command_timeout_s, routing.owns)
        self.applier = CommandApplier(repo, bus, topics, waiters, self.executor.apply, relay, self.executor.apply_many)
        self.deadletters = DeadLetters(repo, bus, topics, clock)
        self.webhook_deliveries = self._webhook_deliveries()  # outgoing webhooks, queued until taken
        self.tenant_log = TenantLog(topics, self.stage, self.applier, routing, clock)
        self.timers = RoutingTimers(
            repo,
            bus,
            topics,
            clock,
            routing,
            self.executor,
            sla,
            self.deadletters,
            self.customers,
            self.follow_ups,
            deadletter_retention=timedelta(days=s.deadletter_retention_days),
            retention=timedelta(days=s.retention_days) if s.retention_days > 0 else None,
        )
        self.hub = FeedHub()
        self.keys = KeyVerifier(db)
        self.configuration = Configuration(repo, clock, relay, topics)  # queues and agents
        self.access = AccessKeys(repo, clock, self.keys, generate_key)  # API keys
        self.audit = AuditLog(repo, clock)
        self.ingress = Ingress(bus, topics)  # events the API takes in
        self.tokens = JwtVerifier(s)
        self.limiter = RateLimiter(s.rate_limit_per_s, s.rate_limit_burst)

    async def start(self, *, consume_events: bool = True) -> None:
        if self.settings.auto_migrate:
            await upgrade(self.db)
        await self.bus.start()
        if self.settings.seed_demo:
            await self._seed()
        await self.relay.flush()  # whatever a crash left in the outbox goes out first
        s = self.settings
        consumers = Consumers(self.bus, self.topics, s.consumer_group, self._stop)
        feeds_joined = asyncio.Event()
        self._spawn(consumers.live_feeds(self.hub, self.instance_id, feeds_joined))
        await asyncio.wait_for(feeds_joined.wait(), 60)
        self._spawn(timers.relay_outbox(self.relay, self._stop, s.outbox_relay_s))
        routes = s.role != "api"  # an API-only replica owns no tenant: no engines to tick, nothing to sweep for
        if routes:
            self._spawn(timers.routing_timers(self.timers, self._stop, s.routing_tick_s, s.routing_sweep_s))
        self._spawn(timers.presence_watch(self.presence, self._stop, s.presence_heartbeat_s))
        self._spawn(trim_freed_memory(self._stop, s.memory_trim_s))
        if self.webhook_deliveries.sender is not None:
            webhooks_joined = asyncio.Event()
            self._spawn(consumers.webhooks(self.webhook_deliveries, webhooks_joined))
            await asyncio.wait_for(webhooks_joined.wait(), 60)
            self._spawn(timers.deliver_webhooks(self.webhook_deliveries, self._stop, s.webhook_delivery_tick_s))
        if consume_events and routes:
            lanes = 1 if self.db.is_sqlite else s.consumer_lanes
            self._spawn(consumers.tenant_log(self.tenant_log, s.consumer_batch_max, lanes, s.consumer_lane_records))
            self._spawn(consumers.statuses(self.statuses))
            self._spawn(consumers.deadletters(self.deadletters))
        self.ready = True
        log.info("router.started", extra={"instance": self.instance_id, "role": s.role})

    async def stop(self) -> None:
        """Graceful: stop taking batches, finish and commit the one in flight, close connections."""
        self.ready = False
        await drain(self._tasks, self._stop)
        await self.bus.close()
        await self.db.close()
        log.info("router.stopped", extra={"instance": self.instance_id})

    def _webhook_deliveries(self) -> WebhookDeliveries:
        """Sent by routing replicas only, when receivers and the signing secret are configured; listed and
        redelivered through every replica's API."""
        s = self.settings
        urls = [u.strip() for u in s.webhook_urls.split(",") if u.strip()]
        secret = s.webhook_secret
        sends = urls and secret is not None and s.role != "api"
        first = timedelta(seconds=s.webhook_retry_first_s)
        return WebhookDeliveries(
            self.repo,
            self.clock,
            f"{s.topic_prefix}{s.consumer_group}",
            urls,
            HttpWebhookSender(secret.get_secret_value(), timeout_s=s.webhook_timeout_s) if sends and secret else None,
            RetryPolicy(
                first, max(first, timedelta(seconds=s.webhook_retry_max_s)), timedelta(hours=s.webhook_retry_window_h)
            ),
            timedelta(days=s.webhook_retention_days),
            lease=timedelta(seconds=2 * s.webhook_timeout_s + 30),
        )

    def _spawn(self, run: Coroutine[None, None, None]) -> None:
        task = asyncio.create_task(run, name=getattr(run, "__qualname__", "task"))
        task.add_done_callback(self._ended)
        self._tasks.append(task)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """A loop meant to run until stop ended before it: said loudly, and the replica reports itself not ready
        (``/readyz``: 503), so an orchestrator restarts it instead of leaving its partitions unread."""
        if self._stop.is_set():
            return
        self.ready = False
        error = None if task.cancelled() else task.exception()
        log.error("router.task_ended", extra={"task": task.get_name(), "error": repr(error)})

    async def _seed(self) -> None:
        now = self.clock()
        if await seed_demo(self.db, now):
            log.info("demo.seeded", extra={"tenant": DEMO_TENANT})
        configured = self.settings.bootstrap_api_key
        self.admin_key = configured.get_secret_value() if configured else generate_key()
        await store_key(self.db, DEMO_TENANT, self.admin_key, "admin", "bootstrap", now)


def build_router(
    settings: Settings, *, bus: Bus | None = None, clock: Callable[[], datetime] = utcnow
) -> RouterRuntime:
    tracing.configure(settings.otlp_endpoint, "switchboard-router")
    return RouterRuntime(
        settings=settings, db=Database.from_settings(settings), bus=bus or make_bus(settings), clock=clock
    )
