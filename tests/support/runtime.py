"""Helpers to run a router in-process for tests, on either shape (embedded or production)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import uvicorn

from services.router.adapters.api_keys import generate_key, store_key
from services.router.bootstrap import Router, build_router
from services.router.entrypoints.http import create_app
from services.router.seed import seed_demo
from shared.bus import Bus
from shared.bus_memory import MemoryBus
from shared.events import Channel, Content, ConversationEvent, IdentityKind, Sender, new_event_id
from shared.settings import Settings
from tests.conftest import random_name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_for(shape: str, tmp_path: Any, servers: Any = None, **overrides: Any) -> Settings:
    """Settings of a test router: random topic prefix and consumer group, nothing read from the environment
    that the test did not choose."""
    base: dict[str, Any] = dict(
        environment="test",
        topic_prefix=random_name("t-") + ".",
        consumer_group=random_name("g-"),
        seed_demo=False,
        log_json=True,
        kafka_partitions=4,
    )
    if shape == "embedded":
        base.update(database_url=f"sqlite+aiosqlite:///{tmp_path}/switchboard.db", kafka_bootstrap=None)
    else:
        base.update(database_url=servers.database_url, kafka_bootstrap=servers.kafka_bootstrap)
    base.update(overrides)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]


@dataclass
class Desk:
    """A started router with a fresh tenant seeded like the demo desk, and an admin key for it."""

    router: Router
    tenant: str
    key: str

    @property
    def bus(self) -> Bus:
        return self.router.bus

    def agent(self, name: str = "agent-ada") -> str:
        return f"{self.tenant}-{name}"


@asynccontextmanager
async def started_desk(settings: Settings, *, consume: bool = True) -> AsyncIterator[Desk]:
    bus: Bus | None = MemoryBus() if not settings.kafka_bootstrap else None
    router = build_router(settings, bus=bus)
    await router.start(consume_events=consume)
    tenant = random_name("tn")
    now = datetime.now(UTC)
    await seed_demo(router.db, now, tenant_id=tenant)
    key = generate_key()
    await store_key(router.db, tenant, key, "admin", "test", now)
    try:
        yield Desk(router, tenant, key)
    finally:
        await router.stop()


@asynccontextmanager
async def serving(router: Router) -> AsyncIterator[str]:
    """The router's HTTP API on a real socket (SSE needs one), for the duration of the block."""
    port = free_port()
    app = create_app(router, manage_lifecycle=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def inbound(
    tenant: str,
    value: str,
    text: str = "hello",
    *,
    channel: Channel = Channel.IN_APP,
    kind: IdentityKind = IdentityKind.APP_USER,
    event_id: str | None = None,
) -> ConversationEvent:
    now = datetime.now(UTC)
    return ConversationEvent(
        id=event_id or new_event_id(),
        source="tests",
        time=now,
        tenant=tenant,
        channel=channel,
        sender=Sender(kind=kind, value=value),
        content=Content(text=text),
        received_at=now,
    )
