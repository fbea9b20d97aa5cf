"""Helpers to run a router in-process for tests, on either shape (embedded or production)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from aiokafka.partitioner import murmur2
from sqlalchemy import select

from services.router.adapters.db import tables as t
from services.router.adapters.db.api_keys import generate_key, store_key
from services.router.adapters.db.seed import seed_demo
from services.router.adapters.views import queries
from services.router.bootstrap import RouterRuntime, build_router
from services.router.entrypoints.http.app import create_app
from shared.bus import Bus, Outgoing
from shared.bus_memory import MemoryBus
from shared.events import Channel, Claim, Content, ConversationEvent, IdentityKind, Sender, encode_event, new_event_id
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

    router: RouterRuntime
    tenant: str
    key: str

    @property
    def bus(self) -> Bus:
        return self.router.bus

    def agent(self, name: str = "agent-ada") -> str:
        return f"{self.tenant}-{name}"


@asynccontextmanager
async def started_desk(
    settings: Settings, *, consume: bool = True, router: RouterRuntime | None = None
) -> AsyncIterator[Desk]:
    if router is None:
        router = build_router(settings, bus=MemoryBus() if not settings.kafka_bootstrap else None)
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
async def desk_on(request: Any, tmp_path: Any, **overrides: Any) -> AsyncIterator[Desk]:
    """A desk on the shape a fixture is parametrized with ("embedded" or "production", the real servers)."""
    servers = request.getfixturevalue("servers") if request.param == "production" else None
    async with started_desk(settings_for(request.param, tmp_path, servers, **overrides)) as desk:
        yield desk


@asynccontextmanager
async def admin_client(desk: Desk) -> AsyncIterator[httpx.AsyncClient]:
    """The desk's HTTP API on a real socket, with its admin key."""
    async with (
        serving(desk.router) as base,
        httpx.AsyncClient(base_url=base, timeout=10, headers={"Authorization": f"Bearer {desk.key}"}) as client,
    ):
        yield client


@asynccontextmanager
async def serve_app(app: Any) -> AsyncIterator[str]:
    """An ASGI app on a real socket (SSE and WebSocket need one), for the duration of the block."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def serving(router: RouterRuntime) -> AsyncIterator[str]:
    """The router's HTTP API on a real socket."""
    async with serve_app(create_app(router, manage_lifecycle=False)) as base:
        yield base


def inbound(
    tenant: str,
    value: str,
    text: str = "hello",
    *,
    channel: Channel = Channel.IN_APP,
    kind: IdentityKind = IdentityKind.APP_USER,
    event_id: str | None = None,
    verified: bool = False,
    claims: tuple[Claim, ...] = (),
    name: str | None = None,
) -> ConversationEvent:
    now = datetime.now(UTC)
    return ConversationEvent(
        id=event_id or new_event_id(),
        source="tests",
        time=now,
        tenant=tenant,
        channel=channel,
        sender=Sender(kind=kind, value=value, verified=verified, claims=list(claims), display_name=name),
        content=Content(text=text),
        received_at=now,
    )


async def wait_for(predicate: Callable[[], Awaitable[Any]], timeout_s: float = 20.0, every_s: float = 0.05) -> Any:
    async with asyncio.timeout(timeout_s):
        while True:
            value = await predicate()
            if value:
                return value
            await asyncio.sleep(every_s)


async def conversation_of(desk: Desk, event_id: str) -> dict[str, Any] | None:
    """The conversation holding the message of ``event_id``, once stored."""
    async with desk.router.repo.reader() as conn:
        row = (
            await conn.execute(
                select(t.messages.c.conversation_id).where(
                    t.messages.c.tenant_id == desk.tenant, t.messages.c.event_id == event_id
                )
            )
        ).first()
        if row is None:
            return None
        return await queries.conversation(conn, desk.tenant, row.conversation_id)


async def publish(desk: Desk, *events: ConversationEvent) -> None:
    await desk.bus.publish([Outgoing(desk.router.topics.events, encode_event(e), e.partition_key()) for e in events])


def tenants_on_every_partition(partitions: int) -> list[str]:
    """One tenant per partition of the co-partitioned events/commands topics (Kafka hashes the key, the tenant,
    with murmur2), so that every replica of a group owns some of them."""
    found: dict[int, str] = {}
    while len(found) < partitions:
        name = random_name("tn")
        found.setdefault((murmur2(name.encode()) & 0x7FFFFFFF) % partitions, name)
    return [found[p] for p in range(partitions)]
