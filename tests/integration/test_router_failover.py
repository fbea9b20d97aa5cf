"""Two router replicas on real Kafka and PostgreSQL: kill one mid-stream; the other takes over its partitions
and tenants; no conversation is lost or assigned twice, and no agent goes above capacity."""

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
from tests.support.processes import SWITCHBOARD, clean_env, start, stop, wait_ready
from tests.support.runtime import free_port, inbound, tenants_on_every_partition

TENANTS = 4  # one per partition: whichever replica is killed owned some
PER_TENANT = 400
CAPACITY = 300  # per agent: less than the work, so capacity is really tested


async def test_killing_one_of_two_replicas_loses_nothing_and_assigns_nothing_twice(
    servers: Servers, tmp_path: Path
) -> None:
    db = Database(servers.database_url)
    await upgrade(db)
    tenants = tenants_on_every_partition(TENANTS)
    for tenant in tenants:
        await seed_demo(db, datetime.now(UTC), tenant_id=tenant)
        async with db.transaction() as conn:
            await conn.execute(
                update(t.agents).where(t.agents.c.tenant_id == tenant).values(capacity={"default": CAPACITY})
            )
    topics = Topics(random_name("t-") + ".")
    group = random_name("g-")
    ports = [free_port(), free_port()]
    envs = [
        clean_env(
            database_url=servers.database_url,
            kafka_bootstrap=servers.kafka_bootstrap,
            topic_prefix=topics.prefix,
            consumer_group=group,
            kafka_partitions="4",
            consumer_batch_max="20",
            http_port=str(port),
            log_level="WARNING",
        )
        for port in ports
    ]
    logs = [tmp_path / f"router-{i}.log" for i in range(2)]
    replicas = [start([SWITCHBOARD, "router"], envs[i], logs[i]) for i in range(2)]
    for i in range(2):
        await asyncio.to_thread(wait_ready, f"http://127.0.0.1:{ports[i]}", replicas[i], logs[i])

    bus = KafkaBus(servers.kafka_bootstrap, partitions=4, topics=topics.all())
    await bus.start()
    events = [inbound(tenant, f"c-{i}", f"{tenant} {i}") for tenant in tenants for i in range(PER_TENANT)]
    await bus.publish([Outgoing(topics.events, encode_event(e), e.partition_key()) for e in events])
    await bus.close()

    async def stored() -> int:
        async with db.read() as conn:
            m = t.messages.c
            return int((await conn.execute(select(func.count()).where(m.tenant_id.in_(tenants)))).scalar_one())

    async with asyncio.timeout(90):
        while await stored() < len(events) // 4:
            await asyncio.sleep(0.01)
    replicas[0].kill()  # SIGKILL one replica mid-stream
    replicas[0].wait()
    try:
        async with asyncio.timeout(120):
            while await stored() < len(events):
                await asyncio.sleep(0.2)
        await asyncio.sleep(2)
        async with db.read() as conn:
            c, s, m = t.conversations.c, t.assignments.c, t.messages.c
            messages = (await conn.execute(select(func.count()).where(m.tenant_id.in_(tenants)))).scalar_one()
            conversations = (await conn.execute(select(func.count()).where(c.tenant_id.in_(tenants)))).scalar_one()
            twice = (
                await conn.execute(
                    select(func.count()).select_from(
                        select(s.conversation_id)
                        .where(s.tenant_id.in_(tenants))
                        .group_by(s.conversation_id)
                        .having(func.count() > 1)
                        .subquery()
                    )
                )
            ).scalar_one()
            loads = (
                await conn.execute(
                    select(s.agent_id, func.count())
                    .where(s.tenant_id.in_(tenants), s.ended_at.is_(None))
                    .group_by(s.agent_id)
                )
            ).all()
            waiting = (
                await conn.execute(select(func.count()).where(c.tenant_id.in_(tenants), c.agent_id.is_(None)))
            ).scalar_one()
            assigned = (await conn.execute(select(func.count()).where(s.tenant_id.in_(tenants)))).scalar_one()
    finally:
        assert stop(replicas[1]) == 0
        await db.close()
    assert messages == conversations == len(events), "nothing lost"
    assert twice == 0, "no conversation assigned twice"
    assert all(n <= CAPACITY for _, n in loads), f"capacity respected: {loads}"
    # each tenant has one online agent (Ada) with CAPACITY: the rest waits, nothing is dropped
    assert assigned == TENANTS * CAPACITY and waiting == len(events) - assigned
