"""Where the context stage spends its time: database time per statement kind for batches of new customers.

    python -m tests.bench.profile_context_stage [--batches 4] [--batch 500]

Runs the real context stage on the real PostgreSQL (the bus is in-process: Kafka is not what this measures)."""

from __future__ import annotations

import argparse
import asyncio
import collections
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, update

from services.router.adapters.db import tables as t
from services.router.adapters.db.seed import seed_demo
from services.router.bootstrap import build_router
from shared.bus import Record
from shared.bus_memory import MemoryBus
from shared.events import encode_event
from tests.conftest import Servers, random_name
from tests.support.runtime import inbound, settings_for
from tests.support.servers import ensure_servers


async def run(batches: int, size: int) -> None:
    db_url, kafka = ensure_servers()
    settings = settings_for("production", Path("/tmp"), Servers(db_url, kafka), kafka_bootstrap=None)
    router = build_router(settings, bus=MemoryBus())
    spent: dict[str, float] = collections.defaultdict(float)

    @event.listens_for(router.db.engine.sync_engine, "before_cursor_execute")
    def before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        conn.info["t0"] = time.perf_counter()

    @event.listens_for(router.db.engine.sync_engine, "after_cursor_execute")
    def after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        spent[" ".join(statement.split()[:3])[:50] + (" (executemany)" if many else "")] += (
            time.perf_counter() - conn.info["t0"]
        )

    await router.start(consume_events=False)
    tenant = random_name("tn")
    await seed_demo(router.db, datetime.now(UTC), tenant_id=tenant)
    async with router.db.transaction() as conn:
        await conn.execute(update(t.agents).where(t.agents.c.tenant_id == tenant).values(capacity={"default": 10**7}))
    spent.clear()
    offset = 0
    started = time.perf_counter()
    for _ in range(batches):
        records = []
        for _ in range(size):
            offset += 1
            records.append(Record("events", 0, offset, None, encode_event(inbound(tenant, f"c{offset}", "x"))))
        await router.stage.handle(records)
    total = time.perf_counter() - started
    await router.stop()
    n = batches * size
    sql = sum(spent.values())
    print(
        f"{n} messages: {total * 1000:.0f} ms in all, {sql * 1000:.0f} ms in the database "
        f"({sql / n * 1e6:.0f} µs/message), {(total - sql) / n * 1e6:.0f} µs/message elsewhere"
    )
    for statement, seconds in sorted(spent.items(), key=lambda kv: -kv[1])[:15]:
        print(f"{seconds * 1000:9.1f} ms  {statement}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(run(args.batches, args.batch))


if __name__ == "__main__":
    main()
