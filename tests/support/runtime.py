"""Helpers to run a router in-process for tests, on either shape (embedded or production)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
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
from tests.support.http import http_client
from tests.support.sqlite_template import migrated_copy


@dataclass
class Desk:
    """A started router with a fresh tenant seeded like the demo desk, and an admin key for it."""

    router: RouterRuntime
    tenant: str
    key: str

    def agent(self, name: str = "agent-ada") -> str:
        return f"{self.tenant}-{name}"

    @property
    def bus(self) -> Bus:
        return self.router.bus


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_for(shape: str, tmp_path: Any, servers: Any = None, **overrides: Any) -> Settings:
    """Settings of a test router: random topic prefix and consumer group, nothing read from the environment
    that the test did not choose. An embedded store not there yet is put there migrated (``migrated_copy``)."""
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
        if "database_url" not in overrides and Path(tmp_path).is_dir():
            migrated_copy(Path(tmp_path) / "switchboard.db")
    else:
        base.update(database_url=servers.database_url, kafka_bootstrap=servers.kafka_bootstrap)
    base.update(overrides)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]


@asynccontextmanager
async def started_desk(
    settings: Settings,
    *,
    consume: bool = True,
    router: RouterRuntime | None = None,
    clock: Callable[[], datetime] | None = None,
) -> AsyncIterator[Desk]:
    """``router`` if given, else one built from ``settings`` (on ``clock``, a clock the test moves, if given)."""
    if router is None:
        bus = MemoryBus() if not settings.kafka_bootstrap else None
        router = build_router(settings, bus=bus) if clock is None else build_router(settings, bus=bus, clock=clock)
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


# Fixtures a test module takes under its own name (``desk = embedded_desk``, ``http = admin_api``).


@pytest.fixture
async def embedded_desk(tmp_path: Any) -> AsyncIterator[Desk]:
    """The embedded desk with default settings."""
    async with started_desk(settings_for("embedded", tmp_path)) as desk:
        yield desk


def desk_fixture(**overrides: Any) -> Any:
    """A fixture of the desk on each shape (embedded, production), with these settings: ``desk = desk_fixture()``."""

    @pytest.fixture(params=["embedded", "production"])
    async def desk(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Desk]:
        async with desk_on(request, tmp_path, **overrides) as d:
            yield d

    return desk


@pytest.fixture
async def admin_api(desk: Desk) -> AsyncIterator[httpx.AsyncClient]:
    """The ``desk`` fixture's HTTP API on a real socket, with its admin key."""
    async with admin_client(desk) as client:
        yield client


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
        http_client(base_url=base, headers={"Authorization": f"Bearer {desk.key}"}) as client,
    ):
        yield client


@asynccontextmanager
async def asgi_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An ASGI app's HTTP API called in-process, without a socket."""
    async with http_client(transport=httpx.ASGITransport(app=app), base_url="http://sb") as client:
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


def texted(tenant: str, phone: str, text: str = "hello", **more: Any) -> ConversationEvent:
    """A customer's SMS from ``phone``, a number the carrier vouches for; ``more``: as ``inbound`` takes it."""
    return inbound(tenant, phone, text, channel=Channel.SMS, kind=IdentityKind.PHONE, verified=True, **more)


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


async def timeline(api: httpx.AsyncClient, customer_id: str, kind: str) -> list[dict[str, Any]]:
    """The entries of this kind on the customer's timeline, read through the API."""
    r = await api.get(f"/v1/customers/{customer_id}/timeline")
    assert r.status_code == 200, r.text
    return [item for item in r.json()["items"] if item["kind"] == kind]


async def timeline_entry(api: httpx.AsyncClient, conv: dict[str, Any], kind: str) -> dict[str, Any]:
    """The data of the one entry of this kind on the timeline of the conversation's customer, which names that
    conversation."""
    [entry] = await timeline(api, conv["customer_id"], kind)
    assert entry["conversation_id"] == conv["id"]
    return dict(entry["data"])


async def publish(desk: Desk, *events: ConversationEvent) -> None:
    await desk.bus.publish([Outgoing(desk.router.topics.events, encode_event(e), e.partition_key()) for e in events])


async def arrive(desk: Desk, event: ConversationEvent) -> dict[str, Any]:
    """Publish ``event``; the conversation holding it, once stored."""
    await publish(desk, event)
    return dict(await wait_for(lambda: conversation_of(desk, event.id)))


def tenants_on_every_partition(partitions: int) -> list[str]:
    """One tenant per partition of the co-partitioned events/commands topics (Kafka hashes the key, the tenant,
    with murmur2), so that every replica of a group owns some of them."""
    found: dict[int, str] = {}
    while len(found) < partitions:
        name = random_name("tn")
        found.setdefault((murmur2(name.encode()) & 0x7FFFFFFF) % partitions, name)
    return [found[p] for p in range(partitions)]
