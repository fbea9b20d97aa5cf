"""SLA timers fired per second on the real PostgreSQL: warnings and breaches, each on the agent's and the
supervisors' feeds, on the customer's timeline, and published.

    python -m tests.bench.bench_sla [--conversations 20000] [--runs 3]

- Setup: a fresh database, the demo desk seeded for one tenant, and N conversations brought in through the
  context stage (each starts a first-response and a resolution clock), then every first-response clock is
  made due (its warning and deadline moved into the past) in one UPDATE.
- Measured: ``SlaClock.tick`` called until nothing is due, on the router's own code path (claim up to 1,000
  due clocks per tenant transaction, fire, publish through the outbox). The figure is fired events (a breach
  counts once, with the warning it implies) per second of wall time, with the router's CPU beside it. Each run
  on a database of its own; the figure is the median run's, every run listed beside it (this machine's speed
  moves by a quarter within an hour).
Merges its figures into tests/bench/results/latest.json under "sla_timers" (target: ≥ 5,000 fired/s)."""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from services.router.adapters.db import tables as t
from tests.bench.bench_takeover import _bench_database, _filled
from tests.bench.record import record


async def once(n: int) -> dict[str, object]:
    async with (
        _bench_database("switchboard_sla_") as (servers, url, home, tenant),
        _filled(servers, url, home, tenant, n) as runtime,
    ):
        past = datetime.now(UTC) - timedelta(minutes=1)
        async with runtime.db.transaction() as conn:
            c = t.conversations.c  # a running clock is on its conversation (tables/sla_slots.py)
            await conn.execute(
                update(t.conversations)
                .where(c.tenant_id == tenant, c.response_kind == "first_response")
                .values(response_warn_at=past, response_due_at=past)
            )
        cpu, wall = time.process_time(), time.perf_counter()
        fired = 0
        while (done := await runtime.sla.tick()) > 0:
            fired += done
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "workload": f"one tenant, {n:,} first-response clocks due at once (warning and breach each)",
        "fired": fired,
        "fired_per_s": round(fired / wall),
        "seconds": round(wall, 2),
        "router_cpu_us_per_fired": round(cpu / fired * 1e6) if fired else None,
        "target": "≥ 5,000 fired/s",
    }


async def run(n: int, runs: int) -> dict[str, object]:
    """The median run (by fired per second), with every run's figure."""
    results = [await once(n) for _ in range(runs)]
    ordered = sorted(results, key=lambda r: int(str(r["fired_per_s"])))
    return ordered[len(ordered) // 2] | {
        "runs": len(results),
        "fired_per_s_runs": [r["fired_per_s"] for r in results],
        "router_cpu_us_per_fired_runs": [r["router_cpu_us_per_fired"] for r in results],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3, help="runs, each on a database of its own (default 3)")
    args = parser.parse_args()
    result = asyncio.run(run(args.conversations, args.runs))
    record("sla_timers", result)


if __name__ == "__main__":
    main()
