"""End to end on the real servers (Kafka + PostgreSQL on this machine), against the bare pipeline measured in
the same run: a benchmark that cannot fool itself.

    python -m tests.bench.bench_pipeline [--runs 3] [--quick] [--loads 250,500,1000] [--ramp ...]

Per run, on a database and topics of its own:
- Workload (tests/bench/workload.py): 4 tenants (one per partition, each seeded with ``seed_demo`` plus online
  agents of finite capacity; every other tenant's messaging queue offers work instead of assigning it), ~70%
  follow-ups from customers whose conversation is open. A process of agents (tests/bench/resolver.py) accepts
  offers and resolves each conversation ``--handle-s`` after it was assigned, through the routing command log.
- Load (tests/bench/load.py): a process of its own, payloads encoded before the clock starts, produced in
  batches with the producer settings of every Switchboard process.
- Warm-up (``--warmup-s``, not kept): the load at up to 200 msg/s gives the database a history, then every
  table is analysed, as autovacuum keeps a live desk's statistics.
- Router: ``switchboard router``. Latency at fixed offered loads (``--loads``) below saturation, read from the
  feed itself: each offer, assignment or message event on routing.assignments names the conversation event that
  caused it (``event_id``, ``received_at``); the listener takes seen - produced and seen - received_at.
  Throughput at saturation: a ramp of offered loads (``--ramp``, ``--step-s`` each) until the router commits
  less than 90% of what is offered; throughput = events committed by its consumer group per second.
- Bare pipeline (tests/bench/bare.py), router stopped, fresh topics: the same topology with no logic, the same
  loads and a ramp of its own.
- Per phase: CPU µs per message of each process (router or bare consumer, PostgreSQL backends of the run's
  database, PostgreSQL's shared processes, the Kafka broker, the load generator, the agents, this listener),
  statements and transactions per batch (pg_stat_statements, pg_stat_database) and the batch-size distribution
  (the consumer group's commits in Kafka's __consumer_offsets, the same for both pipelines); for the router
  also how long its batches took to handle and what share of the phase its log's loop spent handling them
  (``switchboard_consumer_batch_seconds`` on its /metrics).
Merges its figures into tests/bench/results/latest.json (``pipeline`` holds every run in detail) and draws
tests/bench/results/latency.png. ``--quick`` (about a minute, to check it works) writes results/quick.json
instead. The machine's other work counts too: run it on a quiet machine."""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert, update

from services.router.adapters.db import tables as t
from services.router.adapters.db.migrate import upgrade
from services.router.adapters.db.seed import seed_demo
from shared.bus_kafka import KafkaBus
from shared.settings import Settings
from shared.store import Database
from shared.topics import Topics
from tests.bench import bare, load, pipeline_stats, resolver
from tests.bench.bench_routing import RESULTS, machine
from tests.bench.observe import Commits, Listener, PgStats
from tests.bench.proc_cpu import CpuMeter, kafka_pids, postgres_backends, postgres_shared
from tests.bench.workload import Workload
from tests.conftest import random_name
from tests.support.databases import create_database, drop_database
from tests.support.desks import online_agents
from tests.support.processes import SWITCHBOARD, clean_env, start, stop, wait_ready
from tests.support.runtime import free_port, tenants_on_every_partition
from tests.support.servers import ensure_servers

PARTITIONS = 4
BATCH_MAX = Settings.model_fields["consumer_batch_max"].default  # the router's, as it runs here
SATURATED_BELOW = 0.9  # committed / offered under this: the consumer no longer keeps up
SPAWN = multiprocessing.get_context("spawn")  # lean children: nothing of this process's state or loop


@dataclass(frozen=True)
class Options:
    loads: list[int]
    seconds: float
    ramp: list[int]
    bare_ramp: list[int]
    step_s: float
    agents: int
    capacity: int
    handle_s: float
    runs: int
    quick: bool
    drain_s: float  # longest wait for the consumer to catch up after a phase
    warmup_s: float = 30.0  # the warm-up phase's length, before the database is analysed
    lanes: int | None = None  # the router's SWITCHBOARD_CONSUMER_LANES (None: its default)
    lane_records: int | None = None  # its SWITCHBOARD_CONSUMER_LANE_RECORDS (None: its default)


class Child:
    """A process of the benchmark's, driven over a pipe."""

    def __init__(self, target: Any, *args: Any) -> None:
        self.conn, theirs = SPAWN.Pipe()
        self.process = SPAWN.Process(target=target, args=(theirs, *args), daemon=True)
        self.process.start()

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    async def reply(self, timeout_s: float = 120) -> Any:
        conn: Connection = self.conn
        if not await asyncio.to_thread(conn.poll, timeout_s):
            raise TimeoutError(f"no answer from {self.process.name} within {timeout_s}s")
        return conn.recv()

    async def ask(self, *message: Any, timeout_s: float = 120) -> Any:
        self.conn.send(message)
        return await self.reply(timeout_s)

    async def finish(self) -> Any:
        try:
            return await self.ask("stop", timeout_s=30)
        finally:
            self.process.join(10)
            if self.process.is_alive():
                self.process.kill()


@dataclass
class Target:
    """What a phase measures: the router or the bare pipeline, its consumer group and whose CPU counts."""

    name: str
    group: str
    topic: str
    pid: int
    database: str
    listener: Listener
    produced: int = 0  # events offered to ``topic`` so far (the group has committed them all once drained)
    metrics_url: str | None = None
    phases: dict[str, Any] = field(default_factory=dict)


@dataclass
class Bench:
    options: Options
    workload: Workload
    loader: Child
    commits: Commits
    pg: PgStats
    agents_pid: int | None = None

    def meter(self, target: Target) -> CpuMeter:
        groups = {
            target.name: lambda: [target.pid],
            "postgres_backends": lambda: postgres_backends(target.database),
            "postgres_shared": postgres_shared,
            "kafka": kafka_pids,
            "load": lambda: [self.loader.pid],
            "listener": lambda: [os.getpid()],
        }
        if self.agents_pid is not None and target.name == "router":
            agents = self.agents_pid
            groups["agents"] = lambda: [agents]
        return CpuMeter(groups)

    async def drained(self, target: Target, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.commits.total(target.group, target.topic) < target.produced:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    async def phase(self, target: Target, tag: str, rate: int, seconds: float, ramp: bool) -> dict[str, Any]:
        """One offered load: encode, then measure from the first send until drained (a latency phase) or until
        the last send (a ramp step, whose throughput skips the first fifth while queues fill)."""
        _, count = await self.loader.ask("build", tag, rate, seconds, target.topic, timeout_s=600)
        follow_up = [f for _, _, f in self.workload.schedule(tag, rate, seconds)]
        meter = self.meter(target)
        calls0, xacts0 = await self.pg.snapshot()
        scraped0 = await scrape(target.metrics_url, target.group)
        meter.start()
        began = time.time()
        _, stamps, elapsed, failed = await self.loader.ask("go", timeout_s=seconds * 4 + 60)
        sent_until = time.time()
        target.produced += count
        drained = await self.drained(target, 0.0 if ramp else self.options.drain_s)
        await asyncio.sleep(0.5)  # feed records are produced before the offsets commit; let the listener fetch
        spent = meter.stop()
        ended = time.time()
        calls1, xacts1 = await self.pg.snapshot()
        found = self.commits.between(target.group, began, ended)
        processed = sum(b.sizes.get(target.topic, 0) for b in found)
        # throughput: what the group committed while the load was on, past the first fifth (queues filling)
        steady = began + (sent_until - began) / 5
        rate_now = pipeline_stats.commit_rate([b for b in found if steady < b.at <= sent_until], target.topic)
        committed = rate_now if rate_now is not None else 0.0
        out: dict[str, Any] = {
            "offered_msgs_per_s": rate,
            "produced": count,
            "produced_msgs_per_s": round(count / elapsed),
            "produce_failures": failed,
            "committed_msgs_per_s": round(committed),
            "drained": drained,
            "latency": pipeline_stats.latency(tag, stamps, follow_up, target.listener.seen),
            "batches": pipeline_stats.batches(found, target.topic),
            "statements": pipeline_stats.statements(calls0, calls1, len(found)),
            "transactions_per_batch": round((xacts1 - xacts0 - 2) / max(1, len(found)), 1),
            "cpu_us_per_msg": pipeline_stats.cpu_per_message(spent, processed),
            "cpu_cores": {k: round(v / max(ended - began, 1e-3), 2) for k, v in spent.items()},
        }
        if meter.lost:
            out["cpu_processes_lost"] = sorted(meter.lost)
        if target.metrics_url:
            scraped = await scrape(target.metrics_url, target.group)
            out["ingested_by_metrics"] = round(scraped.ingested - scraped0.ingested)
            out["handling"] = pipeline_stats.handling(scraped0.batches, scraped.batches, ended - began)
        lat = out["latency"].get("produce_to_feed_ms", {})
        print(
            f"  {target.name} {'ramp' if ramp else 'load'} {rate:>6}/s: produced {out['produced_msgs_per_s']}/s, "
            f"committed {out['committed_msgs_per_s']}/s, p50/p99 {lat.get('p50')}/{lat.get('p99')} ms, "
            f"seen {out['latency']['seen_share']:.0%}, batch mean {out['batches'].get('mean')}, "
            f"statements/batch {out['statements']['per_batch']}"
            + (
                f", batch handled in {h['mean_ms']} ms, busy {h['busy_share']}"
                if (h := out.get("handling", {})).get("batches")
                else ""
            ),
            flush=True,
        )
        return out

    async def measure(self, target: Target, ramp: list[int], run: int) -> None:
        tag = f"r{run}{target.name[0]}"
        # warm-up, not kept: the database gets a history (customers, open and resolved conversations), and its
        # statistics as autovacuum keeps a live desk's. Measured on empty tables instead, the phases would run
        # on plans PostgreSQL made for empty tables and keeps until its first analysis, a minute or more in:
        # foreign-key checks that scan a tenant's every conversation (docs/performance.md).
        await self.phase(target, f"{tag}w", min(200, self.options.loads[0]), self.options.warmup_s, ramp=False)
        await self.pg.analyze()
        target.phases["latency"] = {
            str(rate): await self.phase(target, f"{tag}l{rate}", rate, self.options.seconds, ramp=False)
            for rate in self.options.loads
        }
        steps: dict[str, Any] = {}
        for rate in ramp:
            step = await self.phase(target, f"{tag}s{rate}", rate, self.options.step_s, ramp=True)
            steps[str(rate)] = step
            if step["committed_msgs_per_s"] < SATURATED_BELOW * step["produced_msgs_per_s"]:
                break
            await self.drained(target, self.options.drain_s)
        target.phases["ramp"] = steps
        best = max(steps.values(), key=lambda s: s["committed_msgs_per_s"])
        target.phases["saturation"] = {
            "msgs_per_s": best["committed_msgs_per_s"],
            "at_offered": best["offered_msgs_per_s"],
            "saturated": any(
                s["committed_msgs_per_s"] < SATURATED_BELOW * s["produced_msgs_per_s"] for s in steps.values()
            ),
            "cpu_us_per_msg": best["cpu_us_per_msg"],
        }
        print(f"  {target.name} saturation: {target.phases['saturation']['msgs_per_s']} msg/s", flush=True)
        await self.drained(target, self.options.drain_s)


@dataclass(frozen=True)
class Scraped:
    ingested: float = 0.0  # messages the router stored (switchboard_ingested_messages_total): commits' cross-check
    batches: pipeline_stats.Handled = field(default_factory=pipeline_stats.Handled)  # its log's batches so far


async def scrape(metrics_url: str | None, group: str) -> Scraped:
    """What the router's /metrics says so far (nothing without a router)."""
    if not metrics_url:
        return Scraped()
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(metrics_url)).text
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    mine = {s.name: s.value for s in samples if s.labels.get("group") == group and "le" not in s.labels}
    return Scraped(
        sum(s.value for s in samples if s.name == "switchboard_ingested_messages_total"),
        pipeline_stats.Handled(
            mine.get("switchboard_consumer_batch_seconds_count", 0.0),
            mine.get("switchboard_consumer_batch_seconds_sum", 0.0),
        ),
    )


async def seed(db: Database, tenants: tuple[str, ...], agents: int, capacity: int) -> None:
    now = datetime.now(UTC)
    for n, tenant in enumerate(tenants):
        await seed_demo(db, now, tenant_id=tenant)
        async with db.transaction() as conn:
            await conn.execute(
                insert(t.agents), online_agents(tenant, now, agents, capacity, id_prefix="bench-", name="Agent")
            )
            if n % 2:  # half the desks offer work for agents to accept, as the demo desk does
                await conn.execute(
                    update(t.queues)
                    .where(t.queues.c.id == f"{tenant}-q-messaging")
                    .values(routing={"offer_timeout_s": 60})
                )


async def run_once(options: Options, run: int, db_url: str, kafka: str) -> dict[str, Any]:
    database = random_name(f"switchboard_bench_{run}_")
    db_url = await create_database(db_url, database)  # the shared test database holds other runs' tenants
    db = Database(db_url)
    await upgrade(db)
    tenants = tuple(tenants_on_every_partition(PARTITIONS))
    workload = Workload(tenants)
    await seed(db, tenants, options.agents, options.capacity)
    await db.close()
    pg = PgStats(db_url)
    await pg.start()
    commits = Commits(kafka)
    await commits.start()
    loader = Child(load.serve, kafka, tenants, workload.follow_ups, workload.window_s)
    bench = Bench(options, workload, loader, commits, pg)
    out: dict[str, Any] = {}
    try:
        out["router"] = await measure_router(bench, db_url, kafka, database, run)
        out["bare"] = await measure_bare(bench, db_url, kafka, database, run)
    finally:
        for cleanup in (loader.finish, commits.stop, pg.close, lambda: drop_database(db_url)):
            try:
                await cleanup()
            except Exception as exc:  # the servers may have gone away: the rest is cleaned up all the same
                print(f"  cleanup: {exc!r}", flush=True)
    router, bare_ = out["router"]["saturation"]["msgs_per_s"], out["bare"]["saturation"]["msgs_per_s"]
    out["ratio_to_bare"] = round(router / bare_, 3) if bare_ else None
    return out


async def measure_router(bench: Bench, db_url: str, kafka: str, database: str, run: int) -> dict[str, Any]:
    topics = Topics(random_name("bench-") + ".")
    bus = KafkaBus(kafka, client_id="bench-listener", partitions=PARTITIONS, topics=topics.all())
    await bus.start()
    agents = Child(resolver.serve, kafka, topics.prefix, PARTITIONS, bench.options.handle_s)
    await agents.reply()
    bench.agents_pid = agents.pid
    port, group = free_port(), random_name("bench-g-")
    env = clean_env(
        database_url=db_url,
        kafka_bootstrap=kafka,
        topic_prefix=topics.prefix,
        consumer_group=group,
        kafka_partitions=str(PARTITIONS),
        http_port=str(port),
        log_level="WARNING",
        **({"consumer_lanes": str(bench.options.lanes)} if bench.options.lanes else {}),
        **({"consumer_lane_records": str(bench.options.lane_records)} if bench.options.lane_records else {}),
    )
    log = Path("/tmp") / f"{topics.prefix}router.log"
    bench.commits.groups.add(group)
    router = start([SWITCHBOARD, "router"], env, log)
    listener = Listener(bus, topics.assignments)
    try:
        await asyncio.to_thread(wait_ready, f"http://127.0.0.1:{port}", router, log)
        await listener.start()
        target = Target("router", group, topics.events, router.pid, database, listener)
        target.metrics_url = f"http://127.0.0.1:{port}/metrics"
        await bench.measure(target, bench.options.ramp, run)
    finally:
        try:
            stop(router, grace_s=60)  # first: a router left behind would go on loading the machine
        except AssertionError as exc:
            print(f"  router: {exc} (killed)", flush=True)
        await listener.stop()
        _, accepted, resolved = await agents.finish()
        bench.agents_pid = None
        await bus.close()
    return {**target.phases, "agents": {"accepted": accepted, "resolved": resolved}, "log": str(log)}


async def measure_bare(bench: Bench, db_url: str, kafka: str, database: str, run: int) -> dict[str, Any]:
    prefix = random_name("bench-bare-") + "."
    events, results, group = f"{prefix}conversation.events", f"{prefix}results", random_name("bench-bare-g-")
    bus = KafkaBus(kafka, client_id="bench-listener", partitions=PARTITIONS, topics=[events, results])
    await bus.start()
    bench.commits.groups.add(group)
    consumer = Child(bare.serve, kafka, db_url, events, results, group, PARTITIONS, BATCH_MAX)
    listener = Listener(bus, results)
    try:
        await consumer.reply()
        await listener.start()
        target = Target("bare", group, events, consumer.pid, database, listener)
        await bench.measure(target, bench.options.bare_ramp, run)
    finally:
        await listener.stop()
        _, batches, records = await consumer.finish()
        await bus.close()
    return {**target.phases, "consumer": {"batches": batches, "records": records}}


def summary(runs: list[dict[str, Any]], options: Options) -> dict[str, Any]:
    """The median run's figures under the keys the README reads, every run under ``pipeline``."""
    order = sorted(range(len(runs)), key=lambda i: runs[i]["router"]["saturation"]["msgs_per_s"])
    middle = runs[order[len(order) // 2]]
    latency = {
        rate: {
            "p50": phase["latency"].get("produce_to_feed_ms", {}).get("p50"),
            "p95": phase["latency"].get("produce_to_feed_ms", {}).get("p95"),
            "p99": phase["latency"].get("produce_to_feed_ms", {}).get("p99"),
            "messages": phase["latency"]["messages"],
            "seen": phase["latency"]["seen"],
        }
        for rate, phase in middle["router"]["latency"].items()
    }
    spread = {
        "e2e_msgs_per_s": pipeline_stats.run_spread([r["router"]["saturation"]["msgs_per_s"] for r in runs]),
        "bare_msgs_per_s": pipeline_stats.run_spread([r["bare"]["saturation"]["msgs_per_s"] for r in runs]),
    }
    for rate in options.loads:
        p99 = [r["router"]["latency"][str(rate)]["latency"].get("produce_to_feed_ms", {}).get("p99", 0.0) for r in runs]
        spread[f"p99_ms_at_{rate}"] = pipeline_stats.run_spread(p99)
    return {
        "e2e_msgs_per_s": middle["router"]["saturation"]["msgs_per_s"],
        "bare_msgs_per_s": middle["bare"]["saturation"]["msgs_per_s"],
        "ratio_to_bare": middle["ratio_to_bare"],
        "latency_ms": latency,
        "pipeline": {
            "workload": {
                "tenants": PARTITIONS,
                "partitions": PARTITIONS,
                "follow_up_share": Workload(()).follow_ups,
                "follow_up_window_s": Workload(()).window_s,
                "agents_per_tenant": options.agents,
                "agent_capacity": options.capacity,
                "handle_s": options.handle_s,
                "offers": "every other tenant's messaging queue",
                "consumer_batch_max": BATCH_MAX,
                "consumer_lanes": options.lanes or Settings.model_fields["consumer_lanes"].default,
                "consumer_lane_records": options.lane_records or Settings.model_fields["consumer_lane_records"].default,
                "warmup_s": options.warmup_s,
                "analyzed_after_warmup": True,
                "loads": options.loads,
                "seconds_per_load": options.seconds,
                "ramp_step_s": options.step_s,
            },
            "spread": spread,
            "runs": runs,
        },
    }


def plot(latency: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loads = sorted(latency, key=int)
    xs = [int(x) for x in loads]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in ("p50", "p95", "p99"):
        ax.plot(xs, [latency[x][key] for x in loads], marker="o", label=key)
    ax.set_xlabel("offered load (messages/s)")
    ax.set_ylabel("produce → offer, assignment or message on the feed (ms)")
    ax.set_yscale("log")
    ax.set_title("Switchboard end-to-end latency (2 cores, Kafka + PostgreSQL)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def parse(argv: list[str] | None = None) -> Options:
    ints = lambda s: [int(x) for x in s.split(",")]  # noqa: E731
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1, help="repeat the whole run and report the spread (default 1)")
    parser.add_argument("--quick", action="store_true", help="about a minute, to check it works; writes quick.json")
    parser.add_argument("--loads", type=ints, help="offered loads for latency, msg/s (default 250,500,1000)")
    parser.add_argument("--seconds", type=float, help="seconds per latency load (default 20)")
    parser.add_argument("--ramp", type=ints, help="router ramp, msg/s (default 500,1000,...,10000)")
    parser.add_argument("--bare-ramp", type=ints, help="bare pipeline ramp, msg/s (default 2000,...,30000)")
    parser.add_argument("--step-s", type=float, help="seconds per ramp step (default 15; 300 to hold each 5 min)")
    parser.add_argument("--agents", type=int, default=40, help="online agents per tenant (default 40)")
    parser.add_argument("--capacity", type=int, default=10, help="conversations an agent holds at once (default 10)")
    parser.add_argument("--handle-s", type=float, default=2.0, help="agents resolve this long after assignment")
    parser.add_argument("--warmup-s", type=float, help="warm-up before the database is analysed (default 30)")
    parser.add_argument("--lanes", type=int, help="the router's SWITCHBOARD_CONSUMER_LANES (default: its own)")
    parser.add_argument("--lane-records", type=int, help="its SWITCHBOARD_CONSUMER_LANE_RECORDS (default: its own)")
    args = parser.parse_args(argv)
    quick = args.quick
    return Options(
        loads=args.loads or ([100, 250] if quick else [250, 500, 1000]),
        seconds=args.seconds or (4.0 if quick else 20.0),
        ramp=args.ramp or ([500, 1000] if quick else [500, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 8000, 10000]),
        bare_ramp=args.bare_ramp or ([4000, 12000] if quick else [2000, 4000, 6000, 8000, 12000, 16000, 20000, 30000]),
        step_s=args.step_s or (3.0 if quick else 15.0),
        drain_s=10.0 if quick else 60.0,
        agents=args.agents,
        capacity=args.capacity,
        handle_s=args.handle_s,
        runs=args.runs,
        quick=quick,
        warmup_s=args.warmup_s or (10.0 if quick else 30.0),
        lanes=args.lanes,
        lane_records=args.lane_records,
    )


async def run(options: Options) -> list[dict[str, Any]]:
    db_url, kafka = ensure_servers()
    runs = []
    for n in range(options.runs):
        print(f"run {n + 1} of {options.runs}", flush=True)
        runs.append(await run_once(options, n, db_url, kafka))
    return runs


def main() -> None:
    options = parse()
    started = time.time()
    figures = summary(asyncio.run(run(options)), options)
    path = RESULTS.with_name("quick.json") if options.quick else RESULTS
    results = json.loads(path.read_text()) if path.exists() else {}
    results.pop("e2e_messages", None)  # the burst of the benchmark before this one
    results.update(figures)
    results["machine"] = machine()
    results["e2e_measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    if not options.quick:
        plot(results["latency_ms"], RESULTS.with_name("latency.png"))
    print(json.dumps({k: figures[k] for k in ("e2e_msgs_per_s", "bare_msgs_per_s", "ratio_to_bare", "latency_ms")}))
    print(json.dumps(figures["pipeline"]["spread"]), "->", path)


if __name__ == "__main__":
    main()
