"""One writer per tenant: two router replicas on real Kafka and PostgreSQL split the tenants by partition of the
routing command log. Agents' commands sent to either replica are applied by the tenant's owner (its engine
is built once, never ping-ponged between replicas); when an owner is killed, the survivor takes its tenants
over, rebuilding each once from PostgreSQL, and commands sent meanwhile are applied, none twice."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import func, select

from services.router.adapters.db import tables as t
from services.router.adapters.db.api_keys import store_key
from services.router.adapters.db.migrate import upgrade
from services.router.adapters.db.seed import seed_demo
from shared.bus import Outgoing
from shared.bus_kafka import KafkaBus
from shared.events import encode_event
from shared.store import Database
from shared.topics import Topics
from tests.conftest import Servers, random_name
from tests.support.databases import create_database, drop_database
from tests.support.processes import SWITCHBOARD, clean_env, start, stop, wait_ready
from tests.support.runtime import free_port, inbound, tenants_on_every_partition

PARTITIONS = 4
PER_TENANT = 30


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


async def scrape(client: httpx.AsyncClient, base: str) -> tuple[float, float, float]:
    text = (await client.get(f"{base}/metrics")).text
    return (
        metric(text, "switchboard_routing_partitions"),
        metric(text, "switchboard_routing_owned_tenants"),
        metric(text, "switchboard_routing_rebuilds_total"),
    )


async def test_each_tenant_has_one_writer_and_a_killed_owner_hands_its_tenants_over(
    servers: Servers, tmp_path: Path
) -> None:
    # a database of its own: each replica's routing sweep serves every tenant with due timers in its database,
    # and the shared test database holds other tests' tenants, which would count as owned here
    database_url = await create_database(servers.database_url, random_name("switchboard_owners_"))
    db = Database(database_url)
    await upgrade(db)
    tenants = tenants_on_every_partition(PARTITIONS)  # each replica owns two
    keys = {tenant: f"sk_{random_name('k')}" for tenant in tenants}
    agents: dict[str, str] = {}
    for tenant in tenants:
        await seed_demo(db, datetime.now(UTC), tenant_id=tenant)
        await store_key(db, tenant, keys[tenant], "admin", "test", datetime.now(UTC))
        async with db.read() as conn:
            a = t.agents.c
            agents[tenant] = (
                await conn.execute(select(a.id).where(a.tenant_id == tenant, a.name.like("Grace%")))
            ).scalar_one()
    topics = Topics(random_name("t-") + ".")
    ports = [free_port(), free_port()]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    env = dict(
        database_url=database_url,
        kafka_bootstrap=servers.kafka_bootstrap,
        topic_prefix=topics.prefix,
        consumer_group=random_name("g-"),
        kafka_partitions=str(PARTITIONS),
        command_timeout_s="60",  # covers a failover: Kafka's session timeout is 10 s
        log_level="WARNING",
    )
    logs = [tmp_path / f"router-{i}.log" for i in range(2)]
    replicas = [start([SWITCHBOARD, "router"], clean_env(**env, http_port=str(ports[i])), logs[i]) for i in range(2)]
    client = httpx.AsyncClient(timeout=90)
    bus = KafkaBus(servers.kafka_bootstrap, partitions=PARTITIONS, topics=topics.all())
    await bus.start()
    try:
        for i in range(2):
            await asyncio.to_thread(wait_ready, bases[i], replicas[i], logs[i])
        async with asyncio.timeout(60):  # the group has settled: two partitions each
            while [(await scrape(client, b))[0] for b in bases] != [2, 2]:
                await asyncio.sleep(0.2)

        async def traffic(round_: int, through: list[str]) -> None:
            events = [inbound(tn, f"c{round_}-{i}", f"{tn} {round_} {i}") for tn in tenants for i in range(PER_TENANT)]
            await bus.publish([Outgoing(topics.events, encode_event(e), e.partition_key()) for e in events])
            calls = []
            for n in range(6):  # Grace goes on and off shift, through whichever replica the balancer picks
                for tenant in tenants:
                    presence = "online" if n % 2 == 0 else "offline"
                    calls.append(
                        client.put(
                            f"{through[n % len(through)]}/v1/agents/{agents[tenant]}/presence",
                            json={"presence": presence},
                            headers={"Authorization": f"Bearer {keys[tenant]}"},
                        )
                    )
            for response in await asyncio.gather(*calls):
                assert response.status_code == 200, response.text

        async def stored() -> int:
            async with db.read() as conn:
                m = t.messages.c
                return int(
                    (
                        await conn.execute(
                            select(func.count()).where(m.tenant_id.in_(tenants), m.direction == "inbound")
                        )
                    ).scalar_one()
                )

        await traffic(0, bases)
        async with asyncio.timeout(60):
            while await stored() < PARTITIONS * PER_TENANT:
                await asyncio.sleep(0.1)
        before = [await scrape(client, b) for b in bases]
        assert [s[1] for s in before] == [2, 2], f"each replica holds its two tenants: {before}"
        assert sum(s[2] for s in before) == len(tenants), f"each engine built once, on its owner: {before}"

        replicas[0].kill()  # SIGKILL the owner of two tenants
        replicas[0].wait()
        await traffic(1, bases[1:])
        async with asyncio.timeout(90):
            while await stored() < 2 * PARTITIONS * PER_TENANT:
                await asyncio.sleep(0.1)
        partitions, owned, rebuilds = await scrape(client, bases[1])
        assert (partitions, owned) == (PARTITIONS, len(tenants))
        assert rebuilds == before[1][2] + 2, "the two tenants taken over are rebuilt once each"

        async with db.read() as conn:
            s, c, r = t.assignments.c, t.conversations.c, t.routing_commands.c
            twice = (
                await conn.execute(
                    select(func.count()).select_from(
                        select(s.conversation_id)
                        .where(s.tenant_id.in_(tenants), s.ended_at.is_(None))
                        .group_by(s.conversation_id)
                        .having(func.count() > 1)
                        .subquery()
                    )
                )
            ).scalar_one()
            conversations = (await conn.execute(select(func.count()).where(c.tenant_id.in_(tenants)))).scalar_one()
            applied = (
                await conn.execute(select(func.count()).where(r.tenant_id.in_(tenants), r.kind == "set_presence"))
            ).scalar_one()
        assert twice == 0
        assert conversations == 2 * PARTITIONS * PER_TENANT
        assert applied == 2 * 6 * len(tenants), "every command applied exactly once"
    finally:
        await bus.close()
        await client.aclose()
        if replicas[0].poll() is None:  # the test failed before killing it: leave no router behind
            replicas[0].kill()
            replicas[0].wait()
        assert stop(replicas[1]) == 0
        await db.close()
        await drop_database(database_url)
