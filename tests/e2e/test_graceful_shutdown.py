"""SIGTERM under traffic, as Kubernetes sends it on a rollout: the process stops taking work, finishes what it
holds, commits, and exits 0 inside the grace period; nothing is lost."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import func, select, update

from services.router.adapters.db import tables as t
from services.router.adapters.db.migrate import upgrade
from services.router.adapters.db.seed import seed_demo
from shared.bus import Outgoing
from shared.bus_kafka import KafkaBus
from shared.events import decode_event, encode_event
from shared.store import Database
from shared.topics import Topics
from tests.conftest import Servers, random_name
from tests.support.processes import SWITCHBOARD, router_env, start, start_telegram_connector, stop, wait_ready
from tests.support.runtime import free_port, inbound

GRACE_S = 30


async def test_router_drains_on_sigterm_under_traffic_and_loses_nothing(servers: Servers, tmp_path: Path) -> None:
    n = 1500
    tenant, topics = random_name("tn"), Topics(random_name("t-") + ".")
    db = Database(servers.database_url)
    await upgrade(db)
    await seed_demo(db, datetime.now(UTC), tenant_id=tenant)
    async with db.transaction() as conn:
        await conn.execute(update(t.agents).where(t.agents.c.tenant_id == tenant).values(capacity={"default": n}))
    port = free_port()
    env = router_env(servers.database_url, servers.kafka_bootstrap, topics.prefix, port, batch=20)
    log = tmp_path / "router.log"
    bus = KafkaBus(servers.kafka_bootstrap, partitions=4, topics=topics.all())
    await bus.start()

    async def count() -> int:
        async with db.read() as conn:
            m = t.messages.c
            return int(
                (
                    await conn.execute(select(func.count()).where(m.tenant_id == tenant, m.direction == "inbound"))
                ).scalar_one()
            )

    proc = start([SWITCHBOARD, "router"], env, log)
    await asyncio.to_thread(wait_ready, f"http://127.0.0.1:{port}", proc, log)
    events = [inbound(tenant, f"c-{i}", f"m{i}") for i in range(n)]
    producing = asyncio.create_task(
        bus.publish([Outgoing(topics.events, encode_event(e), e.partition_key()) for e in events])
    )
    async with asyncio.timeout(60):
        while await count() < 200:
            await asyncio.sleep(0.01)
    started = time.monotonic()
    code = await asyncio.to_thread(stop, proc, GRACE_S)
    took = time.monotonic() - started
    assert code == 0 and took < GRACE_S
    assert await count() < n, "stopped mid-stream"
    await producing
    await bus.close()

    again = start([SWITCHBOARD, "router"], env, log)
    try:
        async with asyncio.timeout(90):
            while await count() < n:
                await asyncio.sleep(0.2)
        await asyncio.sleep(1)
        async with db.read() as conn:
            a = t.assignments.c
            assigned = (await conn.execute(select(func.count()).where(a.tenant_id == tenant))).scalar_one()
        assert (await count(), assigned) == (n, n)
    finally:
        assert stop(again, GRACE_S) == 0
        await db.close()


async def test_connector_drains_on_sigterm_under_webhook_traffic_and_every_acknowledged_message_is_on_kafka(
    servers: Servers, tmp_path: Path
) -> None:
    port, topics = free_port(), Topics(random_name("t-") + ".")
    proc = await asyncio.to_thread(
        start_telegram_connector, servers.kafka_bootstrap, topics.prefix, port, tmp_path / "connector.log"
    )
    acknowledged: list[int] = []
    stop_sending = asyncio.Event()

    async def sender(worker: int) -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            i = 0
            while not stop_sending.is_set():
                update_id = worker * 1_000_000 + i
                message = {
                    "message_id": update_id,
                    "date": 1700000000,
                    "text": f"m{update_id}",
                    "from": {"id": 42, "is_bot": False, "first_name": "T"},
                    "chat": {"id": 42, "type": "private"},
                }
                try:
                    r = await http.post(
                        "/webhooks/telegram",
                        json={"update_id": update_id, "message": message},
                        headers={"X-Telegram-Bot-Api-Secret-Token": "tg-secret"},
                    )
                except httpx.HTTPError:
                    return  # the server is gone: what was acknowledged before counts
                if r.status_code == 200:
                    acknowledged.append(update_id)
                i += 1

    senders = [asyncio.create_task(sender(w)) for w in range(4)]
    while len(acknowledged) < 100:
        await asyncio.sleep(0.01)
    started = time.monotonic()
    code = await asyncio.to_thread(stop, proc, GRACE_S)
    took = time.monotonic() - started
    stop_sending.set()
    await asyncio.gather(*senders)
    assert code == 0 and took < GRACE_S

    bus = KafkaBus(servers.kafka_bootstrap, partitions=4)
    await bus.start()
    consumer = await bus.subscribe([topics.events], random_name("g-"))
    produced: set[str] = set()
    want = {f"m{u}" for u in acknowledged}
    async with asyncio.timeout(30):
        while not want <= produced:
            produced |= {decode_event(r.value).content.text for r in await consumer.getmany(0.5, 1000)}
    await consumer.close()
    await bus.close()
    assert want <= produced
