"""Two router replicas on real Kafka and PostgreSQL: kill one mid-stream; the other takes over its partitions
and tenants; no conversation is lost or assigned twice, no agent goes above capacity, and the survivor continues
exactly where the dead owner left off: conversations it had escalated are still served first."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import func, select, update

from services.router.adapters.db import tables as t
from services.router.adapters.db.api_keys import store_key
from services.router.adapters.db.migrate import upgrade
from services.router.adapters.db.seed import seed_demo
from shared.bus import Outgoing
from shared.bus_kafka import KafkaBus
from shared.events import encode_event
from shared.routing_commands import Command, Escalate
from shared.store import Database
from shared.topics import Topics
from tests.conftest import Servers, random_name
from tests.support.processes import SWITCHBOARD, clean_env, start, stop, wait_ready
from tests.support.runtime import free_port, inbound, tenants_on_every_partition

TENANTS = 4  # one per partition: whichever replica is killed owned some
PER_TENANT = 400
CAPACITY = 300  # per agent: less than the work, so capacity is really tested
FIRST = 320  # per tenant before the escalations: 300 assigned, 20 waiting
ESCALATED = 5  # of those waiting, per tenant: the last to arrive, moved ahead by an SLA warning
FREED = 10  # conversations resolved per tenant after the takeover: who is served next


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
    first = [e for e in events if int(e.sender.value.split("-")[1]) < FIRST]
    rest = [e for e in events if e not in first]

    async def stored() -> int:
        async with db.read() as conn:
            m = t.messages.c
            return int(
                (
                    await conn.execute(select(func.count()).where(m.tenant_id.in_(tenants), m.direction == "inbound"))
                ).scalar_one()
            )

    await bus.publish([Outgoing(topics.events, encode_event(e), e.partition_key()) for e in first])
    async with asyncio.timeout(90):
        while await stored() < len(first):
            await asyncio.sleep(0.05)
    escalated = await escalate_latest_waiting(db, bus, topics, tenants)
    await bus.publish([Outgoing(topics.events, encode_event(e), e.partition_key()) for e in rest])
    async with asyncio.timeout(90):
        while await stored() < len(first) + len(rest) // 10:
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
            messages = (
                await conn.execute(select(func.count()).where(m.tenant_id.in_(tenants), m.direction == "inbound"))
            ).scalar_one()
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
        served_next = await free_and_see_who_is_served(db, ports[1], tenants)
    finally:
        await bus.close()
        assert stop(replicas[1]) == 0
        await db.close()
    for tenant in tenants:  # the dead owner's escalations held: those conversations went first, then FIFO
        first_served, then = served_next[tenant]
        assert set(first_served) == escalated[tenant], tenant
        assert then, tenant
    assert messages == conversations == len(events), "nothing lost"
    assert twice == 0, "no conversation assigned twice"
    assert all(n <= CAPACITY for _, n in loads), f"capacity respected: {loads}"
    # each tenant has one online agent (Ada) with CAPACITY: the rest waits, nothing is dropped
    assert assigned == TENANTS * CAPACITY and waiting == len(events) - assigned


async def escalate_latest_waiting(
    db: Database, bus: KafkaBus, topics: Topics, tenants: list[str]
) -> dict[str, set[str]]:
    """An SLA warning with raise_priority on the last ESCALATED waiting conversations of each tenant, applied
    by the tenant's owner before the kill."""
    chosen: dict[str, set[str]] = {}
    async with db.read() as conn:
        c = t.conversations.c
        for tenant in tenants:
            rows = await conn.execute(
                select(c.id)
                .where(c.tenant_id == tenant, c.agent_id.is_(None), c.status == "open")
                .order_by(c.queued_at.desc(), c.id.desc())  # last in line, ties included
                .limit(ESCALATED)
            )
            chosen[tenant] = {r.id for r in rows}
    commands = [Command.of(tn, Escalate(escalations=dict.fromkeys(ids))) for tn, ids in chosen.items()]
    await bus.publish([command.record(topics) for command in commands])
    async with asyncio.timeout(60):
        while True:
            async with db.read() as conn:
                c = t.conversations.c
                done = (
                    await conn.execute(
                        select(func.count()).where(c.id.in_(set().union(*chosen.values())), c.escalated_at.is_not(None))
                    )
                ).scalar_one()
            if done == ESCALATED * len(tenants):
                return chosen
            await asyncio.sleep(0.1)


async def free_and_see_who_is_served(db: Database, port: int, tenants: list[str]) -> dict[str, tuple[list[str], bool]]:
    """Resolve FREED of Ada's conversations per tenant through the survivor; returns, per tenant, the first
    ESCALATED conversations given to Ada after that, and whether the rest were the longest-waiting ones."""
    out: dict[str, tuple[list[str], bool]] = {}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        for tenant in tenants:
            key = f"sk_{random_name('k')}"
            await store_key(db, tenant, key, "admin", "test", datetime.now(UTC))
            async with db.read() as conn:
                c, s = t.conversations.c, t.assignments.c
                held = [
                    r.id
                    for r in await conn.execute(
                        select(c.id).where(c.tenant_id == tenant, c.agent_id.is_not(None)).limit(FREED)
                    )
                ]
                waiting_before = {
                    r.id: r.queued_at
                    for r in await conn.execute(
                        select(c.id, c.queued_at).where(c.tenant_id == tenant, c.agent_id.is_(None), c.status == "open")
                    )
                }
                since = (await conn.execute(select(func.max(s.seq)).where(s.tenant_id == tenant))).scalar_one()
            for conversation_id in held:
                r = await client.post(
                    f"/v1/conversations/{conversation_id}/resolve",
                    json={"survey": "none"},
                    headers={"Authorization": f"Bearer {key}"},
                )
                assert r.status_code == 204, r.text
            async with asyncio.timeout(30):
                while True:
                    async with db.read() as conn:
                        s = t.assignments.c
                        given = [
                            r.conversation_id
                            for r in await conn.execute(
                                select(s.conversation_id).where(s.tenant_id == tenant, s.seq > since).order_by(s.seq)
                            )
                        ]
                    if len(given) >= FREED:
                        break
                    await asyncio.sleep(0.1)
            rest = given[ESCALATED:FREED]
            still_waiting = [at for cid, at in waiting_before.items() if cid not in given]
            fifo = all(waiting_before[cid] <= min(still_waiting) for cid in rest)
            out[tenant] = (given[:ESCALATED], fifo)
    return out
