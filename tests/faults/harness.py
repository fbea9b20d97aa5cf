"""The fault suite: real PostgreSQL and Kafka, two router replicas and three connectors (Telegram, Meta, Twilio)
as processes, traffic flowing (REST messages; Telegram, WhatsApp, Messenger and SMS webhooks signed as each
provider signs them, with duplicate replays; agents replying on every one of those channels and resolving),
while faults are injected round after round, placed by messages actually sent (schedule.py):

- router_a_sigkill, router_b_sigkill: kill -9 of a router, restarted; connector_sigkill: kill -9 of every
  connector at once, restarted;
- kafka_sigkill: the broker killed with SIGKILL, port verified closed, restarted, port verified open;
- postgres_immediate_stop: ``pg_ctl -m immediate``, verified the same way (server_crashes.py);
- postgres_latency, postgres_bandwidth, postgres_resets, kafka_latency, kafka_bandwidth, kafka_resets: on the
  network between the routers and each server, through Toxiproxy (network.py);
- owner_cut_from_kafka: the Kafka connections of the router that owns the desk go silent while it still reaches
  PostgreSQL, until the group has given its partitions to the other: a zombie owner, which the routing fence
  must hold off.

Afterwards everything is checked from outside (outside_checks.py): the assignments table by SQL, the messages
stored, the replies the fake providers received, every answer the clients got, per channel.

Run: ``make faults`` (100,000 messages, each kind 3 times) or ``python -m tests.faults.run --messages 3000
--rounds 1``; the CI test runs one round on a small count. Any count in ``MUST_BE_ZERO`` fails the run."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
from sqlalchemy import insert, update

from services.router.adapters.db import tables as t
from services.router.adapters.db.api_keys import generate_key, store_key
from services.router.adapters.db.migrate import upgrade
from services.router.adapters.db.seed import seed_demo
from shared.store import Database
from tests.conftest import random_name
from tests.faults import channels, network, outside_checks, traffic
from tests.faults.resources import ResourceSampler
from tests.faults.schedule import FaultRecord, plan, summarize
from tests.faults.server_crashes import KafkaBroker, PostgresServer, listening_pid, port_open
from tests.support.databases import create_database, drop_database
from tests.support.desks import online_agents
from tests.support.processes import ROOT, SWITCHBOARD, clean_env, start, wait_ready
from tests.support.providers import FakeProviders, fake_providers
from tests.support.runtime import free_port

# Agents hold work in units of a routing profile (routing/capacity.py): 4 chats, or 6 Telegram chats and a
# chat, never more than 6 on Telegram. The outside check recomputes the load in these units.
PROFILE = {"capacity": 4, "weights": {"default": 1, "telegram": 0.5}, "max": {"telegram": 6}, "exclusive": ["voice"]}
EXTRA_AGENTS = 3  # beside the demo desk's three: more conversations held at once, more replies in flight
SERVER_DOWN_S = 3.0  # how long Kafka and PostgreSQL stay down before they are started again

KINDS = {
    "router_a_sigkill": "kill -9 of router-a, restarted",
    "router_b_sigkill": "kill -9 of router-b, restarted",
    "connector_sigkill": "kill -9 of the Telegram, Meta and Twilio connectors at once, restarted",
    "kafka_sigkill": f"Kafka broker SIGKILL, down {SERVER_DOWN_S:.0f} s, restarted (port closed, then open)",
    "postgres_immediate_stop": f"PostgreSQL pg_ctl -m immediate, down {SERVER_DOWN_S:.0f} s, restarted",
    **{
        f"{server}_{fault}": f"Toxiproxy between the routers and {name}: {what}"
        for server, name in (("postgres", "PostgreSQL"), ("kafka", "Kafka"))
        for fault, what in (
            ("latency", f"{network.LATENCY_MS} ± {network.JITTER_MS} ms each way for {network.TOXIC_S:.0f} s"),
            ("bandwidth", f"{network.BANDWIDTH_KBPS} KB/s each way for {network.TOXIC_S:.0f} s"),
            ("resets", f"every connection reset (TCP RST) for {network.RESET_S:.0f} s, {network.RESETS} times"),
        )
    },
    "owner_cut_from_kafka": "the desk's owning router's Kafka connections silent (Toxiproxy drops the data) while "
    "it still reaches PostgreSQL, until the other router owns every partition, then "
    f"{network.HELD_AFTER_S:.0f} s more: a zombie owner against the routing fence",
}

MUST_BE_ZERO = (
    "lost",
    "duplicated",
    "stored_on_wrong_channel",
    "gave_up",
    "unexpected_answers",
    "double_assigned",
    "capacity_violations",
    "feeds_disagree",
    "replies_lost",
    "replies_delivered_twice",
    "replies_stored_twice",
    "replies_on_wrong_channel",
    "fault_kinds_short",
    "faults_without_traffic",
    "faults_failed",
    "faults_not_recovered",
)


def say(line: str) -> None:
    print(f"faults: {line}", flush=True)


@dataclass
class Service:
    name: str
    args: list[str]
    env: dict[str, str]
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        self.proc = start(self.args, self.env, self.log)
        wait_ready(self.base, self.proc, self.log, timeout_s=120)

    def kill9(self) -> dict[str, Any]:
        assert self.proc is not None
        pid = self.proc.pid
        self.proc.kill()
        code = self.proc.wait()
        if code != -9:
            raise AssertionError(f"{self.name} exited with {code} before its SIGKILL")
        return {"pid": pid, "exit": code}

    def down(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def connectors(
    fake: FakeProviders, kafka_bootstrap: str, prefix: str, tenant: str, work_dir: Path
) -> dict[str, Service]:
    """`switchboard connector <name>` for Telegram, Meta (WhatsApp Cloud API and Messenger) and Twilio SMS, each
    verifying webhooks with the secret the traffic signs with, and delivering replies to the fake providers."""

    def connector(name: str) -> Service:
        port = free_port()
        env = clean_env(
            kafka_bootstrap=kafka_bootstrap,
            topic_prefix=prefix,
            http_port=str(port),
            connector_tenant=tenant,
            kafka_partitions="4",
            log_level="WARNING",
            outbound_backoff_s="0.2",
            outbound_max_attempts="30",
            **channels.connector_settings(name, fake.base),
        )
        return Service(
            f"connector-{name}", [SWITCHBOARD, "connector", name], env, port, work_dir / f"connector-{name}.log"
        )

    return {name: connector(name) for name in channels.CONNECTORS}


async def run(
    database_url: str,
    kafka_bootstrap: str,
    messages: int,
    work_dir: Path,
    *,
    rate: float,
    rounds: int,
    kinds: Sequence[str] = tuple(KINDS),
    sampler: ResourceSampler | None = None,
    reply_burst: int = 0,
    people: int | None = None,
) -> dict[str, Any]:
    """``messages`` offered at ``rate`` per second; ``rounds`` faults of every kind spread over them (``kinds``
    narrows them for a look at the harness alone: the suite, `make faults` and CI, always runs every kind).
    ``sampler`` samples the routers', the connectors' and the broker's memory and open files while the traffic
    runs (the soak). ``reply_burst`` replies are posted at once around each kill of the connectors, half before
    it, so that replies are in flight when those die. ``people``: how many customers write (default: one for
    every eight messages)."""
    schedule = plan(kinds, rounds, messages)
    kafka, postgres = KafkaBroker(kafka_bootstrap, work_dir), PostgresServer(database_url)
    kafka.check()  # both crashes can be done here, or the run fails now: never one left out
    postgres.check()
    # A database of the run's own on the server given: routers relay the whole outbox and sweep every tenant of
    # their database, so on a shared one another test's router (on an in-memory bus) takes this run's replies.
    database_url = await create_database(database_url, random_name("switchboard_faults_"))
    db = Database(database_url)
    tenant, key = await _desk(db)
    prefix, group = random_name("f-") + ".", random_name("g-")
    pg = urlparse(database_url.replace("postgresql+asyncpg", "postgresql"))
    net = network.Network(work_dir)
    pg_port, router_bootstraps = await asyncio.to_thread(net.start, f"{pg.hostname}:{pg.port}", kafka, 2)
    proxied = database_url.replace(f"{pg.hostname}:{pg.port}", f"127.0.0.1:{pg_port}")

    def router(name: str, bootstrap: str) -> Service:
        port = free_port()
        env = clean_env(
            database_url=proxied,
            kafka_bootstrap=bootstrap,
            kafka_client_id=name,
            topic_prefix=prefix,
            consumer_group=group,
            kafka_partitions="4",
            http_port=str(port),
            log_level="WARNING",
            instance_id=name,
        )
        return Service(name, [SWITCHBOARD, "router"], env, port, work_dir / f"{name}.log")

    tally = traffic.Tally()
    records: list[FaultRecord] = []
    restarts: list[outside_checks.Restart] = []  # connectors killed: a reply in hand may go out again
    async with fake_providers() as fake:
        hooks = connectors(fake, kafka_bootstrap, prefix, tenant, work_dir)
        routers = [router(name, b) for name, b in zip(("router-a", "router-b"), router_bootstraps, strict=True)]
        services = [*routers, *hooks.values()]
        await asyncio.gather(*(asyncio.to_thread(s.up) for s in services))
        say(
            f"2 routers and 3 connectors (Telegram, Meta, Twilio) up; tenant {tenant}; {messages} messages offered "
            f"at {rate:.0f}/s; {len(schedule)} faults ({rounds} of each of {len(kinds)} kinds)"
        )

        async def sigkill(service: Service) -> dict[str, Any]:
            killed = service.kill9()
            await asyncio.sleep(1.0)
            await asyncio.to_thread(service.up)
            assert service.proc is not None
            return killed | {"new_pid": service.proc.pid}

        async def crash(server: KafkaBroker | PostgresServer) -> dict[str, Any]:
            down = await asyncio.to_thread(server.crash)
            await asyncio.sleep(SERVER_DOWN_S)
            return down | await asyncio.to_thread(server.restart)

        def undelivered() -> int:
            return len(tally.replies_accepted - {d.token for d in outside_checks.delivered_replies(fake.requests)})

        async def connectors_kill() -> dict[str, Any]:
            # Half-way through the burst: its first half waits for the connectors (or is in their hands), the
            # second is posted while they are down.
            before = len(tally.replies_accepted)
            burst = asyncio.create_task(traffic.reply_burst(db, tenant, routers, key, tally, reply_burst))
            while not burst.done() and len(tally.replies_accepted) - before < reply_burst // 2:
                await asyncio.sleep(0.01)
            in_flight = undelivered()
            killed: dict[str, Any] = {}
            try:
                for c in hooks.values():
                    killed[c.name] = c.kill9()
                await asyncio.sleep(1.0)
                accepted = await burst
                waiting = undelivered()
            finally:  # whatever failed, the connectors are started again
                restarted_at = time.time()
                dead = [c for c in hooks.values() if c.proc is None or c.proc.poll() is not None]
                await asyncio.gather(*(asyncio.to_thread(c.up) for c in dead))
            for name, c in hooks.items():
                assert c.proc is not None
                killed[c.name] |= {"new_pid": c.proc.pid}
                restarts.append(outside_checks.Restart(channels.CONNECTORS[name], restarted_at))
            return killed | {
                "reply_burst_accepted": accepted,
                "replies_in_flight_at_kill": in_flight,
                "replies_waiting_at_restart": waiting,
            }

        inject: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
            "router_a_sigkill": lambda: sigkill(routers[0]),
            "router_b_sigkill": lambda: sigkill(routers[1]),
            "connector_sigkill": connectors_kill,
            "kafka_sigkill": lambda: crash(kafka),
            "postgres_immediate_stop": lambda: crash(postgres),
            "postgres_latency": lambda: net.latency(["postgres"]),
            "postgres_bandwidth": lambda: net.bandwidth(["postgres"]),
            "postgres_resets": lambda: net.resets(["postgres"]),
            "kafka_latency": lambda: net.latency(net.kafka),
            "kafka_bandwidth": lambda: net.bandwidth(net.kafka),
            "kafka_resets": lambda: net.resets(net.kafka),
            "owner_cut_from_kafka": lambda: net.cut_off([r.base for r in routers]),
        }
        started = time.monotonic()
        started_at = datetime.now(UTC)
        stop_desk = asyncio.Event()
        desk = asyncio.create_task(traffic.desk(db, tenant, routers, key, tally, stop_desk))

        def pids() -> dict[str, int | None]:
            alive = {s.name: s.proc.pid if s.proc and s.proc.poll() is None else None for s in services}
            return alive | {"kafka": listening_pid(kafka.port)}

        stop_sampling = asyncio.Event()
        sampling = asyncio.create_task(sampler.run(pids, stop_sampling)) if sampler is not None else None
        customers = asyncio.create_task(
            traffic.customers(
                messages, rate, routers, hooks, key, tally, max_pending=max(256, int(rate * 20)), people=people
            )
        )
        try:
            for n, planned in enumerate(schedule):
                tally.hold_at = planned.at_message + 1  # message at_message goes, the next waits for the fault
                while tally.sent < planned.at_message and not customers.done():
                    await asyncio.sleep(0.05)
                record = FaultRecord(planned.kind, KINDS[planned.kind], planned.at_message)
                records.append(record)
                following = schedule[n + 1].at_message + 1 if n + 1 < len(schedule) else None
                await _inject(record, inject[planned.kind], tally, started, lambda at=following: _release(tally, at))
                say(
                    f"{record.kind} at message {record.sent_at_start} (planned {planned.at_message}): "
                    f"{record.ended_s - record.started_s:.1f} s, {record.messages_sent_during} messages sent during"
                    + (f"; FAILED: {record.error}" if record.error else "")
                )
                record.recovered_s = await _recovered(services, tally, customers, time.monotonic())
            await customers
            traffic_s = time.monotonic() - started
            if sampling is not None:
                stop_sampling.set()  # the traffic is over: what it left behind is sampled no more
                await sampling
            accepted = Counter(tally.channel_of[token] for token in tally.accepted)
            say(
                f"traffic done: {len(tally.accepted)} of {tally.sent} accepted in {traffic_s:.0f} s ("
                + ", ".join(f"{channel} {n}" for channel, n in accepted.items())
                + ")"
            )
            await _settle(db, tenant, tally)
            stop_desk.set()
            await desk
            stored_replies = await outside_checks.stored_tokens(db, tenant, "outbound", "r%")
            delivered = await _drain_replies(fake.requests, tally.replies_accepted | set(stored_replies))
            result = await outside_checks.check(db, tenant, tally, delivered, restarts)
        finally:
            stop_desk.set()
            stop_sampling.set()
            customers.cancel()
            desk.cancel()
            for s in services:
                await asyncio.to_thread(s.down)
            await asyncio.to_thread(net.stop)
            await db.close()
            await asyncio.to_thread(_servers_back, kafka, postgres)
    faults = summarize(records, kinds, rounds)
    per_kind = faults.pop("per_kind")
    counts = {**result, **faults}
    samples = counts.pop("samples")
    database = database_url.rsplit("/", 1)[1]
    if any(counts[name] for name in MUST_BE_ZERO):
        say(f"database {database} kept for a look at what went wrong")
    else:
        await drop_database(database_url)
    return {
        **{name: counts.pop(name) for name in MUST_BE_ZERO},
        **counts,
        "faults_per_kind": per_kind,
        "faults": [r.as_json() for r in records],
        "samples": samples,
        "run": {
            "database": database,
            "tenant": tenant,
            "started_at": started_at.isoformat(),
            "seconds": round(time.monotonic() - started, 1),
            "traffic_seconds": round(traffic_s, 1),
            "offered_rate": rate,
            "achieved_rate": round(tally.sent / traffic_s, 1),
            "rounds": rounds,
            "servers": {"kafka_port": kafka.port, "postgres_port": postgres.port},
            "cores": os.cpu_count(),
            **_commit(),
        },
    }


async def _desk(db: Database) -> tuple[str, str]:
    """A desk of its own: the demo queues, six agents online on one routing profile, an admin key."""
    await upgrade(db)
    tenant = random_name("fx")
    now = datetime.now(UTC)
    await seed_demo(db, now, tenant_id=tenant)
    profile = f"{tenant}-faults"
    async with db.transaction() as conn:
        await conn.execute(
            insert(t.routing_profiles).values(
                id=profile, tenant_id=tenant, name="Faults", config=PROFILE, created_at=now
            )
        )
        await conn.execute(
            insert(t.agents), online_agents(tenant, now, EXTRA_AGENTS, 4, id_prefix="agent-x", name="Extra")
        )
        await conn.execute(
            update(t.agents).where(t.agents.c.tenant_id == tenant).values(profile_id=profile, presence="online")
        )
    key = generate_key()
    await store_key(db, tenant, key, "admin", "faults", now)
    return tenant, key


async def _inject(
    record: FaultRecord,
    fault: Callable[[], Awaitable[dict[str, Any]]],
    tally: traffic.Tally,
    started: float,
    begun: Callable[[], None],
) -> None:
    accepted = len(tally.accepted)
    record.sent_at_start = tally.sent
    begun()  # the traffic goes on during the fault
    record.started_at = datetime.now(UTC).isoformat()
    record.started_s = round(time.monotonic() - started, 2)
    try:
        record.details = await fault()
    except Exception as exc:  # recorded, and the run fails on it (faults_failed)
        record.error = f"{type(exc).__name__}: {exc}"
    record.sent_at_end = tally.sent
    record.ended_at = datetime.now(UTC).isoformat()
    record.ended_s = round(time.monotonic() - started, 2)
    record.messages_sent_during = record.sent_at_end - record.sent_at_start
    record.accepted_during = len(tally.accepted) - accepted


def _release(tally: traffic.Tally, hold_at: int | None) -> None:
    tally.hold_at = hold_at


async def _recovered(
    services: list[Service], tally: traffic.Tally, customers: asyncio.Task[None], since: float, timeout_s: float = 180
) -> float | None:
    """Seconds until every process answers ready and a message is accepted again (None: not within the time)."""
    accepted = len(tally.accepted)
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() - since < timeout_s:
            ready = True
            for s in services:
                try:
                    ready = ready and (await http.get(f"{s.base}/readyz")).status_code == 200
                except httpx.HTTPError:
                    ready = False
            # traffic held at the next fault's mark cannot bring a new message: readiness is what is left to see
            held = tally.hold_at is not None and tally.sent >= tally.hold_at
            if ready and (len(tally.accepted) > accepted or customers.done() or held):
                return round(time.monotonic() - since, 2)
            await asyncio.sleep(0.2)
    return None


async def _settle(db: Database, tenant: str, tally: traffic.Tally, timeout_s: float = 240) -> None:
    """Wait until every accepted message is stored, or the time is up (the check then counts what is lost)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with suppress(Exception):
            if tally.accepted <= set(await outside_checks.stored_tokens(db, tenant, "inbound", "m%")):
                return
        await asyncio.sleep(1.0)


async def _drain_replies(
    requests: list[Any], expected: set[str], timeout_s: float = 120
) -> list[outside_checks.Delivery]:
    """Wait until every reply accepted or stored reached its fake provider (or the time is up); every reply
    they received."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if expected <= {d.token for d in outside_checks.delivered_replies(requests)}:
            break
        await asyncio.sleep(1.0)
    await asyncio.sleep(2.0)  # a late second delivery still counts
    return outside_checks.delivered_replies(requests)


def _servers_back(kafka: KafkaBroker, postgres: PostgresServer) -> None:
    """Whatever happened, the shared servers are left up: a crash whose restart failed is restarted again."""
    for server in (kafka, postgres):
        if not port_open(server.port):
            with suppress(AssertionError):
                server.restart()
            if not port_open(server.port):
                say(f"server on port {server.port} is still down: run deploy/local/services.sh up")


def _commit() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

    try:
        changed = git("status", "--porcelain", "--untracked-files=no").splitlines()  # tracked files as committed
        return {"commit": git("rev-parse", "HEAD"), "tree_clean": not changed, "files_changed": len(changed)}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "tree_clean": False, "files_changed": None}
