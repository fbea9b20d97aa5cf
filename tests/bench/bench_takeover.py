"""A tenant with many open conversations taken over by another replica: how long from "this partition is mine"
to routing again, on the real PostgreSQL.

    python -m tests.bench.bench_takeover [--conversations 50000]

- Setup: a fresh database, the demo desk seeded for one tenant, and N conversations from N customers brought in
  through the context stage itself (batches of 500), so each has the routing fact a live router wrote; then
  ``VACUUM ANALYZE``, as autovacuum would do after such a load.
- Measured: a second, cold router runtime (no engine in memory, as a replica taking the partition over) runs the
  tenant's first routing pass: lock, rebuild from PostgreSQL (queues, agents, counters, every open conversation
  restored from its fact) and route, in one transaction; three times, each on a cold runtime. The figure is the
  median wall time, with the rebuild's CPU beside it.
Merges its figures into tests/bench/results/latest.json under "takeover" (target: < 2 s at 50,000)."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from services.router.adapters.db.seed import seed_demo
from services.router.bootstrap import RouterRuntime, build_router
from shared.bus import Record
from shared.bus_memory import MemoryBus
from shared.events import encode_event
from tests.bench.record import record
from tests.conftest import random_name
from tests.support.databases import create_database, drop_database
from tests.support.runtime import inbound, settings_for
from tests.support.servers import ensure_servers

BATCH = 500


class _Servers:
    def __init__(self, database_url: str, kafka_bootstrap: str) -> None:
        self.database_url = database_url
        self.kafka_bootstrap = kafka_bootstrap


def _runtime(servers: _Servers, url: str, home: Path) -> RouterRuntime:
    quiet = dict(routing_tick_s=3600, routing_sweep_s=3600, presence_heartbeat_s=3600)
    return build_router(settings_for("production", home, servers, database_url=url, **quiet), bus=MemoryBus())


async def _fill(runtime: RouterRuntime, tenant: str, n: int) -> None:
    started = time.monotonic()
    for first in range(0, n, BATCH):
        records = []
        for i in range(first, min(n, first + BATCH)):
            event = inbound(tenant, f"customer-{i}", f"message of customer {i}")
            records.append(Record(runtime.topics.events, 0, i, event.partition_key(), encode_event(event)))
        await runtime.stage.handle(records)
        print(f"\r  {min(n, first + BATCH):,}/{n:,} conversations ({time.monotonic() - started:.0f} s)", end="")
    print()


@asynccontextmanager
async def _bench_database(prefix: str) -> AsyncIterator[tuple[_Servers, str, Path, str]]:
    """The local servers, a fresh database on them (dropped afterwards), a home directory and a tenant name."""
    db_url, kafka = ensure_servers()
    url = await create_database(db_url, random_name(prefix))
    try:
        with tempfile.TemporaryDirectory() as home:
            yield _Servers(db_url, kafka), url, Path(home), random_name("bench")
    finally:
        await drop_database(url)


@asynccontextmanager
async def _filled(servers: _Servers, url: str, home: Path, tenant: str, n: int) -> AsyncIterator[RouterRuntime]:
    """A started runtime on ``url``, the demo desk seeded for ``tenant`` and its ``n`` conversations brought in."""
    runtime = _runtime(servers, url, home)
    await runtime.start(consume_events=False)
    try:
        await seed_demo(runtime.db, datetime.now(UTC), tenant_id=tenant)
        await _fill(runtime, tenant, n)
        await _vacuumed(runtime)
        yield runtime
    finally:
        await runtime.stop()


async def _vacuumed(runtime: RouterRuntime) -> None:
    """After the fill, a bulk load, what autovacuum would do within a minute: the planner's statistics, and the
    outbox's dead rows (every acknowledgement's row, published and deleted) gone, so a takeover measured right
    after reads the tables a desk that has been running would have."""
    async with runtime.db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE"))


async def _takeover(servers: _Servers, url: str, home: Path, tenant: str) -> tuple[float, float, int]:
    runtime = _runtime(servers, url, home)
    await runtime.start(consume_events=False)
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        async with runtime.repo.unit() as u:
            await u.routing.lock_tenants([tenant])
            routed = await runtime.routing.route(u, tenant, datetime.now(UTC), [])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        engine = runtime.routing.current(tenant)
        assert engine is not None and runtime.routing.rebuilds == 1
        return wall, cpu, len(routed.outbox)
    finally:
        await runtime.stop()


async def run(n: int, repeats: int) -> dict[str, object]:
    async with _bench_database("switchboard_takeover_") as (servers, url, home, tenant):
        async with _filled(servers, url, home, tenant, n):
            pass
        runs = [await _takeover(servers, url, home, tenant) for _ in range(repeats)]
    walls = [w for w, _, _ in runs]
    return {
        "workload": f"one tenant, {n:,} open conversations (demo desk's agents at capacity), cold replica",
        "takeover_s_median": round(statistics.median(walls), 3),
        "takeover_s_runs": [round(w, 3) for w in walls],
        "router_cpu_s_median": round(statistics.median(c for _, c, _ in runs), 3),
        "target": "< 2 s at 50,000 open conversations",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    result = asyncio.run(run(args.conversations, args.repeats))
    record("takeover", result)


if __name__ == "__main__":
    main()
