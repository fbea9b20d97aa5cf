"""A batch of the tenants' log does not wait for its feed to be published: the relay's loop publishes it at
once, kicked at the batch's end, and a graceful stop publishes what was kicked and not yet sent. Nothing
committed is left in the outbox either way."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, insert, select

from services.router.adapters.db import tables as t
from services.router.adapters.db.seed import seed_demo
from services.router.bootstrap import RouterRuntime, build_router
from shared.bus import Record
from shared.bus_memory import MemoryBus
from shared.events import encode_event
from tests.support.desks import online_agents
from tests.support.runtime import inbound, settings_for

TENANT = "acme"


async def outbox_rows(runtime: RouterRuntime) -> int:
    async with runtime.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(t.outbox))).scalar_one())


def feed_records(bus: MemoryBus, topic: str) -> int:
    return sum(len(part) for part in bus.log(topic))


async def desk(tmp_path: Path, bus: MemoryBus) -> RouterRuntime:
    # the relay's safety-net round is an hour away: only a kick publishes within the test
    settings = settings_for("embedded", tmp_path, outbox_relay_s=3600, routing_tick_s=3600, routing_sweep_s=3600)
    runtime = build_router(settings, bus=bus)
    await runtime.start(consume_events=False)
    now = datetime.now(UTC)
    await seed_demo(runtime.db, now, tenant_id=TENANT)
    async with runtime.db.transaction() as conn:
        await conn.execute(insert(t.agents), online_agents(TENANT, now, 4, 5, id_prefix="agent-k", name="K"))
    return runtime


def batch(runtime: RouterRuntime, n: int, first: int = 0) -> list[Record]:
    out = []
    for i in range(first, first + n):
        event = inbound(TENANT, f"customer-{i}", f"message {i}")
        out.append(Record(runtime.topics.events, 0, i, event.partition_key(), encode_event(event)))
    return out


async def test_the_batch_feed_is_published_by_the_relay_loop_once_kicked(tmp_path: Path) -> None:
    bus = MemoryBus()
    runtime = await desk(tmp_path, bus)
    try:
        await runtime.tenant_log.handle(batch(runtime, 6))
        await runtime.relay.settled()
        assert await outbox_rows(runtime) == 0
        # every conversation assigned (room for all): an assignment each on the agents' feed
        assert feed_records(bus, runtime.topics.assignments) >= 6
    finally:
        await runtime.stop()


async def test_a_graceful_stop_publishes_what_was_kicked(tmp_path: Path) -> None:
    bus = MemoryBus()
    runtime = await desk(tmp_path, bus)
    stopped = False
    try:
        runtime.relay.kicked.set = lambda: None  # type: ignore[method-assign]  # the kick is not heard in time
        await runtime.tenant_log.handle(batch(runtime, 4))
        assert await outbox_rows(runtime) > 0
        await runtime.stop()
        stopped = True
        assert feed_records(bus, runtime.topics.assignments) >= 4
    finally:
        if not stopped:
            await runtime.stop()
    restarted = build_router(runtime.settings, bus=MemoryBus())
    async with restarted.db.read() as conn:
        left = int((await conn.execute(select(func.count()).select_from(t.outbox))).scalar_one())
    await restarted.db.close()
    assert left == 0
