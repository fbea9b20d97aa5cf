"""Presence from connections across replicas, on real PostgreSQL and Kafka: two router processes split the tenants;
each agent's console feed is on replica A, so for the tenants replica B owns the feed and the owner are on
different replicas. A feed that drops and comes back within the grace time changes nothing; one that stays
closed sets the agent away after the grace, with the reason on their feed, and their open offer goes to the
next agent."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, update

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
from tests.support.processes import SWITCHBOARD, clean_env, start, stop, wait_ready
from tests.support.runtime import free_port, inbound, tenants_on_every_partition

PARTITIONS = 4
GRACE_S = 2.0


async def test_a_feed_dropped_on_one_replica_sets_the_agent_away_on_the_owner(servers: Servers, tmp_path: Path) -> None:
    db = Database(servers.database_url)
    await upgrade(db)
    tenants = tenants_on_every_partition(PARTITIONS)  # each replica owns two
    admin = {tn: f"sk_{random_name('a')}" for tn in tenants}
    console = {tn: f"sk_{random_name('c')}" for tn in tenants}
    now = datetime.now(UTC)
    for tn in tenants:
        await seed_demo(db, now, tenant_id=tn)
        async with db.transaction() as conn:  # Messaging offers; Grace is on shift too, and will be next
            q = t.queues.c
            await conn.execute(
                update(t.queues).where(q.id == f"{tn}-q-messaging").values(routing={"offer_timeout_s": 120})
            )
            await conn.execute(update(t.agents).where(t.agents.c.id == f"{tn}-agent-grace").values(presence="offline"))
        await store_key(db, tn, admin[tn], "admin", "test", now)
        await store_key(db, tn, console[tn], "agent", "console", now, agent_id=f"{tn}-agent-ada")
    topics = Topics(random_name("t-") + ".")
    ports = [free_port(), free_port()]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    env = dict(
        database_url=servers.database_url,
        kafka_bootstrap=servers.kafka_bootstrap,
        topic_prefix=topics.prefix,
        consumer_group=random_name("g-"),
        kafka_partitions=str(PARTITIONS),
        presence_grace_s=str(GRACE_S),
        presence_heartbeat_s="0.25",
        command_timeout_s="60",
        log_level="WARNING",
    )
    logs = [tmp_path / f"router-{i}.log" for i in range(2)]
    replicas = [start([SWITCHBOARD, "router"], clean_env(**env, http_port=str(ports[i])), logs[i]) for i in range(2)]
    bus = KafkaBus(servers.kafka_bootstrap, partitions=PARTITIONS, topics=topics.all())
    await bus.start()
    try:
        for i in range(2):
            await asyncio.to_thread(wait_ready, bases[i], replicas[i], logs[i])
        events = {tn: inbound(tn, "waiting-customer", "hello?") for tn in tenants}
        await bus.publish([Outgoing(topics.events, encode_event(e), e.partition_key()) for e in events.values()])
        conversations = {
            tn: await _wait(lambda tn=tn: _conversation_held_by(db, events[tn].id, f"{tn}-agent-ada")) for tn in tenants
        }

        async with (
            httpx.AsyncClient(base_url=bases[0], timeout=30) as a,
            httpx.AsyncClient(base_url=bases[1], timeout=30) as b,
        ):
            # every console on replica A; the dropped-and-back case first
            async with AsyncExitStack() as feeds:
                for tn in tenants:
                    await feeds.enter_async_context(_feed(a, tn, console[tn]))
                await _wait(lambda: _open_connections(db, tenants, len(tenants)))
            async with AsyncExitStack() as feeds:
                for tn in tenants:
                    await feeds.enter_async_context(_feed(a, tn, console[tn]))
                await asyncio.sleep(3 * GRACE_S)
                for tn in tenants:
                    assert await _presence(db, f"{tn}-agent-ada") == ("online", None), "back within the grace"
                    assert await _conversation_held_by(db, events[tn].id, f"{tn}-agent-ada")
                    r = await b.put(
                        f"/v1/agents/{tn}-agent-grace/presence",
                        json={"presence": "online"},
                        headers={"Authorization": f"Bearer {admin[tn]}"},
                    )
                    assert r.status_code == 200, r.text
            # closed for good: away after the grace, on whichever replica owns the tenant; the offer moves on
            for tn in tenants:
                await _wait(lambda tn=tn: _presence_is(db, f"{tn}-agent-ada", ("away", "disconnected")), 30)
                await _wait(lambda tn=tn: _conversation_held_by(db, events[tn].id, f"{tn}-agent-grace"), 30)
                told = await _feed_rows(db, f"{tn}-agent-ada", "presence")
                assert told == [{"agent": f"{tn}-agent-ada", "presence": "away", "reason": "disconnected"}]
                assert conversations[tn]
    finally:
        await bus.close()
        codes = [stop(r) for r in replicas]
        await db.close()
    assert codes == [0, 0]


class _feed:
    """An agent's console feed (SSE) open for the duration of the block."""

    def __init__(self, client: httpx.AsyncClient, tenant: str, key: str) -> None:
        self.cm = client.stream(
            "GET", f"/v1/agents/{tenant}-agent-ada/feed", headers={"Authorization": f"Bearer {key}"}
        )

    async def __aenter__(self) -> None:
        response = await self.cm.__aenter__()
        assert response.status_code == 200

    async def __aexit__(self, *exc: Any) -> None:
        await self.cm.__aexit__(*exc)


async def _wait(check: Any, timeout_s: float = 60) -> Any:
    async with asyncio.timeout(timeout_s):
        while not (value := await check()):
            await asyncio.sleep(0.1)
        return value


async def _conversation_held_by(db: Database, event_id: str, agent_id: str) -> str | None:
    async with db.read() as conn:
        m, c = t.messages.c, t.conversations.c
        row = (
            await conn.execute(
                select(c.id, c.agent_id).join(t.messages, m.conversation_id == c.id).where(m.event_id == event_id)
            )
        ).first()
        return str(row.id) if row is not None and row.agent_id == agent_id else None


async def _open_connections(db: Database, tenants: list[str], n: int) -> bool:
    async with db.read() as conn:
        c = t.agent_connections.c
        rows = (await conn.execute(select(c.id).where(c.tenant_id.in_(tenants), c.closed_at.is_(None)))).all()
        return len(rows) == n


async def _presence(db: Database, agent_id: str) -> tuple[str, str | None]:
    async with db.read() as conn:
        a = t.agents.c
        row = (await conn.execute(select(a.presence, a.presence_reason).where(a.id == agent_id))).one()
        return row.presence, row.presence_reason


async def _presence_is(db: Database, agent_id: str, expected: tuple[str, str | None]) -> bool:
    return await _presence(db, agent_id) == expected


async def _feed_rows(db: Database, agent_id: str, kind: str) -> list[dict[str, Any]]:
    async with db.read() as conn:
        e = t.agent_events.c
        rows = await conn.execute(select(e.data).where(e.agent_id == agent_id, e.type == kind).order_by(e.seq))
        return [dict(r.data) for r in rows]
