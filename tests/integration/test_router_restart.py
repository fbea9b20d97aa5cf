"""Crash safety on real Kafka and PostgreSQL: produce N, kill -9 the router mid-stream, restart it; every one
of the N is stored once and assigned exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select, update

from services.router.adapters.db import tables as t
from services.router.adapters.db.migrate import upgrade
from services.router.adapters.db.seed import seed_demo
from shared.bus import Outgoing
from shared.bus_kafka import KafkaBus
from shared.events import encode_event
from shared.store import Database
from shared.topics import Topics
from tests.conftest import Servers, random_name
from tests.support.processes import SWITCHBOARD, router_env, start, stop, wait_ready
from tests.support.runtime import free_port, inbound

N = 2000


async def counts(db: Database, tenant: str) -> tuple[int, int, int, int]:
    async with db.read() as conn:
        m = t.messages.c
        a = t.assignments.c
        messages = (
            await conn.execute(select(func.count()).where(m.tenant_id == tenant, m.direction == "inbound"))
        ).scalar_one()
        distinct_events = (
            await conn.execute(
                select(func.count(func.distinct(m.event_id))).where(m.tenant_id == tenant, m.direction == "inbound")
            )
        ).scalar_one()
        assigned = (await conn.execute(select(func.count()).where(a.tenant_id == tenant))).scalar_one()
        distinct_convs = (
            await conn.execute(select(func.count(func.distinct(a.conversation_id))).where(a.tenant_id == tenant))
        ).scalar_one()
    return messages, distinct_events, assigned, distinct_convs


async def test_router_killed_mid_stream_loses_nothing_and_assigns_nothing_twice(
    servers: Servers, tmp_path: Path
) -> None:
    tenant = random_name("tn")
    topics = Topics(random_name("t-") + ".")
    db = Database(servers.database_url)
    await upgrade(db)
    await seed_demo(db, datetime.now(UTC), tenant_id=tenant)
    async with db.transaction() as conn:  # room for all N on one agent: capacity is not what this tests
        await conn.execute(update(t.agents).where(t.agents.c.tenant_id == tenant).values(capacity={"default": N}))
    bus = KafkaBus(servers.kafka_bootstrap, partitions=4, topics=topics.all())
    await bus.start()
    events = [inbound(tenant, f"c-{i}", f"message {i}") for i in range(N)]
    await bus.publish([Outgoing(topics.events, encode_event(e), e.partition_key()) for e in events])
    await bus.close()

    port = free_port()
    env = router_env(servers.database_url, servers.kafka_bootstrap, topics.prefix, port, batch=10)
    log = tmp_path / "router.log"
    first = start([SWITCHBOARD, "router"], env, log)
    try:
        async with asyncio.timeout(90):
            while (await counts(db, tenant))[0] < 100:
                await asyncio.sleep(0.01)
    finally:
        first.kill()  # SIGKILL: no graceful anything
        first.wait()
    at_kill = await counts(db, tenant)
    assert at_kill[0] < N, "the kill must land mid-stream"

    second = start([SWITCHBOARD, "router"], env, log)
    try:
        await asyncio.to_thread(wait_ready, f"http://127.0.0.1:{port}", second, log)
        async with asyncio.timeout(120):
            while (await counts(db, tenant))[2] < N:
                await asyncio.sleep(0.2)
        await asyncio.sleep(2)  # anything redelivered late would show up now
        final = await counts(db, tenant)
    finally:
        code = stop(second)
    await db.close()
    assert final == (N, N, N, N), f"messages, distinct events, assignments, distinct conversations: {final}"
    assert code == 0
