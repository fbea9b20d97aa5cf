"""End-to-end throughput and latency on the real servers (Kafka + PostgreSQL on this machine), and the bare
pipeline limit for comparison.

    python -m tests.bench.bench_pipeline [--loads 500,1000,2000] [--seconds 10] [--saturation 20000]

- A `switchboard router` process consumes conversation events; the benchmark produces them at fixed offered
  loads (every message from a new customer, so every one opens, queues and assigns a conversation) and
  listens on routing.assignments, the topic agent feeds are served from: latency = ingest → assignment
  visible to the feeds (p50/p95/p99 per load).
- Saturation: N messages produced at once; throughput = N / (last assignment - first produce).
- Bare limit: the same messages through aiokafka produce → consume → batched PostgreSQL insert, no logic.
Merges its figures into tests/bench/results/latest.json and draws tests/bench/results/latency.png."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson
from sqlalchemy import select, text, update

from services.router.adapters.db import tables as t
from services.router.adapters.db.migrate import upgrade
from services.router.adapters.db.seed import seed_demo
from shared.bus import Outgoing
from shared.bus_kafka import KafkaBus
from shared.events import encode_event
from shared.store import Database
from shared.topics import Topics
from tests.bench.bench_routing import RESULTS, machine, percentile
from tests.conftest import random_name
from tests.support.databases import create_database
from tests.support.processes import SWITCHBOARD, clean_env, start, stop, wait_ready
from tests.support.runtime import free_port, inbound
from tests.support.servers import ensure_servers


class Listener:
    """Receives assignment events as the feeds do and stamps when each conversation's arrived."""

    def __init__(self, bus: KafkaBus, topic: str) -> None:
        self.bus, self.topic = bus, topic
        self.seen: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        consumer = await self.bus.subscribe([self.topic], random_name("bench-"), from_beginning=False)

        async def run() -> None:
            try:
                while not self._stop.is_set():
                    for record in await consumer.getmany(0.05, 5000):
                        self.seen.setdefault(orjson.loads(record.value)["conversation_id"], time.time())
            finally:
                await consumer.close()

        self._task = asyncio.create_task(run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task:
            await self._task


async def produce_at(
    bus: KafkaBus, topics: Topics, tenant: str, rate: int, seconds: float, tag: str
) -> dict[str, float]:
    """Offered load: ``rate`` messages a second for ``seconds``, in 20 ms ticks. Returns event id → produce time."""
    sent: dict[str, float] = {}
    tick = 0.02
    per_tick = max(1, round(rate * tick))
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < seconds:
        events = [inbound(tenant, f"{tag}-{n + i}", f"{tag} message {n + i}") for i in range(per_tick)]
        n += per_tick
        stamp = time.time()
        await bus.publish([Outgoing(topics.events, encode_event(e), e.partition_key()) for e in events])
        for e in events:
            sent[e.id] = stamp
        target = started + (n / rate)
        await asyncio.sleep(max(0.0, target - time.monotonic()))
    return sent


async def latencies(
    db: Database, tenant: str, sent: dict[str, float], listener: Listener, timeout_s: float
) -> list[float]:
    deadline = time.monotonic() + timeout_s
    m = t.messages.c
    while True:
        async with db.read() as conn:
            rows = (
                await conn.execute(
                    select(m.event_id, m.conversation_id).where(m.tenant_id == tenant, m.event_id.in_(list(sent)))
                )
            ).all()
        done = [(sent[e], listener.seen[c]) for e, c in rows if c in listener.seen]
        if len(done) == len(sent) or time.monotonic() > deadline:
            return [(seen - produced) * 1000 for produced, seen in done]
        await asyncio.sleep(0.5)


async def bare_limit(db_url: str, kafka: str, n: int) -> float:
    """aiokafka produce → consume → batched INSERT, nothing else: the ceiling for this machine."""
    db = Database(db_url)
    async with db.transaction() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS bench_bare (id text PRIMARY KEY, body bytea NOT NULL)"))
    topic = random_name("bench-bare-")
    bus = KafkaBus(kafka, partitions=4, topics=[topic])
    await bus.start()
    payloads = [encode_event(inbound("bench", f"bare-{i}", f"bare {i}")) for i in range(n)]
    consumer = await bus.subscribe([topic], random_name("bare-"))
    started = time.monotonic()
    for i in range(0, n, 1000):
        await bus.publish([Outgoing(topic, p, str(j).encode()) for j, p in enumerate(payloads[i : i + 1000], i)])
    stored = 0
    while stored < n:
        records = await consumer.getmany(0.2, 500)
        if not records:
            continue
        async with db.transaction() as conn:
            await conn.execute(
                text("INSERT INTO bench_bare (id, body) VALUES (:id, :body) ON CONFLICT DO NOTHING"),
                [{"id": f"{topic}-{r.partition}-{r.offset}", "body": r.value} for r in records],
            )
        await consumer.commit()
        stored += len(records)
    elapsed = time.monotonic() - started
    await consumer.close()
    await bus.close()
    async with db.transaction() as conn:
        await conn.execute(text("DROP TABLE bench_bare"))
    await db.close()
    return n / elapsed


def plot(latency: dict[str, dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loads = sorted(latency, key=int)
    xs = [int(x) for x in loads]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in ("p50", "p95", "p99"):
        ax.plot(xs, [latency[x][key] for x in loads], marker="o", label=key)
    ax.set_xlabel("offered load (messages/s)")
    ax.set_ylabel("ingest → assignment on the feed topic (ms)")
    ax.set_yscale("log")
    ax.set_title("Switchboard end-to-end latency (2 cores, Kafka + PostgreSQL)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


async def run(loads: Sequence[int], seconds: float, saturation: int) -> dict[str, object]:
    db_url, kafka = ensure_servers()
    db_url = await create_database(db_url, "switchboard_bench")  # the shared test database holds other runs' tenants
    tenant, topics = random_name("bench"), Topics(random_name("bench-") + ".")
    db = Database(db_url)
    await upgrade(db)
    await seed_demo(db, datetime.now(UTC), tenant_id=tenant)
    async with db.transaction() as conn:  # capacity is not what this measures
        await conn.execute(update(t.agents).where(t.agents.c.tenant_id == tenant).values(capacity={"default": 10**7}))
    port = free_port()
    env = clean_env(
        database_url=db_url,
        kafka_bootstrap=kafka,
        topic_prefix=topics.prefix,
        consumer_group=random_name("bench-g-"),
        kafka_partitions="4",
        http_port=str(port),
        log_level="WARNING",
    )
    log = Path("/tmp") / f"{topics.prefix}router.log"
    bus = KafkaBus(kafka, partitions=4, topics=topics.all())
    await bus.start()
    router = start([SWITCHBOARD, "router"], env, log)
    await asyncio.to_thread(wait_ready, f"http://127.0.0.1:{port}", router, log)
    listener = Listener(bus, topics.assignments)
    await listener.start()
    results: dict[str, object] = {}
    try:
        latency: dict[str, dict[str, float]] = {}
        for load in loads:
            sent = await produce_at(bus, topics, tenant, load, seconds, f"l{load}")
            ms = await latencies(db, tenant, sent, listener, timeout_s=120)
            latency[str(load)] = {
                "p50": round(statistics.median(ms), 1),
                "p95": round(percentile(ms, 0.95), 1),
                "p99": round(percentile(ms, 0.99), 1),
                "messages": len(sent),
                "assigned": len(ms),
            }
            print(f"offered {load:>5}/s: {latency[str(load)]}", flush=True)
        events = [inbound(tenant, f"sat-{i}", f"saturation {i}") for i in range(saturation)]
        first = time.time()
        for i in range(0, saturation, 1000):
            await bus.publish(
                [Outgoing(topics.events, encode_event(e), e.partition_key()) for e in events[i : i + 1000]]
            )
        sent = {e.id: first for e in events}
        ms = await latencies(db, tenant, sent, listener, timeout_s=300)
        e2e = len(ms) / (max(ms) / 1000) if ms else 0.0
        print(f"saturation: {len(ms)} of {saturation} assigned, {e2e:.0f} msg/s", flush=True)
        bare = await bare_limit(db_url, kafka, saturation)
        print(f"bare pipeline: {bare:.0f} msg/s", flush=True)
        results = {
            "e2e_msgs_per_s": round(e2e),
            "bare_msgs_per_s": round(bare),
            "ratio_to_bare": round(e2e / bare, 3) if bare else None,
            "latency_ms": latency,
            "e2e_messages": saturation,
        }
    finally:
        await listener.stop()
        stop(router)
        await bus.close()
        await db.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loads", default="500,1000,2000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--saturation", type=int, default=20_000)
    args = parser.parse_args()
    figures = asyncio.run(run([int(x) for x in args.loads.split(",")], args.seconds, args.saturation))
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.update(figures)
    results["machine"] = machine()
    results["e2e_measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    plot(results["latency_ms"], RESULTS.with_name("latency.png"))  # type: ignore[arg-type]
    print(json.dumps({k: results[k] for k in ("e2e_msgs_per_s", "bare_msgs_per_s", "ratio_to_bare")}))


if __name__ == "__main__":
    main()
