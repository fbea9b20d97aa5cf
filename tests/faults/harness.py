"""The fault suite: real PostgreSQL and Kafka, two router replicas and a Telegram connector as processes, traffic
flowing (REST messages, signed Telegram webhooks with duplicate replays, agents replying and resolving), while
faults are injected in turn: kill -9 of each router replica and of the connector (restarted), a stop and
restart of the Kafka broker and of PostgreSQL, latency and dropped connections between the routers and
PostgreSQL (a TCP proxy in this process). Afterwards everything is checked against what was sent:

- lost: messages a client got accepted (202 / 200) that are not stored;
- duplicated: messages stored more than once;
- double_assigned: a conversation held by two agents at once, replaying every agent's feed in order;
- capacity_violations: an agent holding more conversations on a channel than its capacity, same replay;
- replies_delivered_twice: replies the provider received more than once (replies_lost: accepted, never sent).

Run: ``make faults`` (100,000 messages) or ``python -m tests.faults.run --messages 3000``; the CI test runs a
small count and fails on any non-zero count."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
from sqlalchemy import select, update

from services.router.adapters.db import tables as t
from services.router.adapters.db.api_keys import generate_key, store_key
from services.router.adapters.db.migrate import upgrade
from services.router.adapters.db.seed import seed_demo
from shared.store import Database
from tests.conftest import random_name
from tests.support.processes import ROOT, SWITCHBOARD, clean_env, start, wait_ready
from tests.support.providers import FakeProviders, fake_providers
from tests.support.runtime import free_port

SERVICES = str(ROOT / "deploy/local/services.sh")
SECRET = "tg-fault-secret"
BOT = "123456:FAULTS"
CAPACITY = {"default": 4}


def say(line: str) -> None:
    print(f"faults: {line}", flush=True)


# -- a TCP proxy between the routers and PostgreSQL: latency and dropped connections on demand ---------------


class Proxy:
    """Runs in a thread of its own with its own event loop, so the load generator cannot starve it."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.delay_s = 0.0
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="pg-proxy", daemon=True)

    async def start(self) -> None:
        self._thread.start()
        await asyncio.to_thread(self._ready.wait, 10)

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)

    def drop_all(self) -> None:
        """Loss: every open connection is cut (clients see resets mid-transaction)."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._drop)

    def _drop(self) -> None:
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.run_until_complete(asyncio.start_server(self._accept, "127.0.0.1", self.port))
        self._ready.set()
        loop.run_forever()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    if self.delay_s:
                        await asyncio.sleep(self.delay_s)
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.transport.abort()
                self._writers.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


# -- the processes ------------------------------------------------------------------------------------------


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

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def down(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def services_sh(action: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    subprocess.run([SERVICES, action], check=True, env=env, stdout=subprocess.DEVNULL)


# -- the run ----------------------------------------------------------------------------------------------------


@dataclass
class Tally:
    accepted: set[str] = field(default_factory=set)  # message tokens a client got accepted
    replies_accepted: set[str] = field(default_factory=set)
    duplicate_webhooks: int = 0
    client_retries: int = 0


@dataclass
class Fault:
    at: float  # fraction of the traffic sent
    name: str
    run: Callable[[], Awaitable[None]]


async def run(
    database_url: str,
    kafka_bootstrap: str,
    messages: int,
    work_dir: Path,
    *,
    rate: float = 300.0,
    min_seconds: float = 70.0,
) -> dict[str, Any]:
    """Traffic lasts ``messages / rate`` seconds, at least ``min_seconds`` so that every fault (restarts take
    seconds each) happens while messages flow; faults are spread over that time."""
    rate = min(rate, messages / min_seconds)
    db = Database(database_url)
    await upgrade(db)
    tenant = random_name("fx")
    now = datetime.now(UTC)
    await seed_demo(db, now, tenant_id=tenant)
    async with db.transaction() as conn:
        await conn.execute(
            update(t.agents).where(t.agents.c.tenant_id == tenant).values(capacity=CAPACITY, presence="online")
        )
    key = generate_key()
    await store_key(db, tenant, key, "admin", "faults", now)
    prefix = random_name("f-") + "."
    group = random_name("g-")

    pg = urlparse(database_url.replace("postgresql+asyncpg", "postgresql"))
    proxy = Proxy(pg.hostname or "127.0.0.1", pg.port or 5432)
    await proxy.start()
    proxied = database_url.replace(f"{pg.hostname}:{pg.port}", f"127.0.0.1:{proxy.port}")
    ours = pg.port == 15432 and kafka_bootstrap.endswith(":19092")  # the servers deploy/local/services.sh runs

    def router(name: str) -> Service:
        port = free_port()
        env = clean_env(
            database_url=proxied,
            kafka_bootstrap=kafka_bootstrap,
            topic_prefix=prefix,
            consumer_group=group,
            kafka_partitions="4",
            http_port=str(port),
            log_level="WARNING",
            instance_id=name,
        )
        return Service(name, [SWITCHBOARD, "router"], env, port, work_dir / f"{name}.log")

    tally = Tally()
    async with fake_providers() as fake:
        connector_port = free_port()
        connector = Service(
            "connector-telegram",
            [SWITCHBOARD, "connector", "telegram"],
            clean_env(
                kafka_bootstrap=kafka_bootstrap,
                topic_prefix=prefix,
                http_port=str(connector_port),
                connector_tenant=tenant,
                telegram_secret_token=SECRET,
                telegram_bot_token=BOT,
                telegram_api_base_url=fake.base,
                kafka_partitions="4",
                log_level="WARNING",
                outbound_backoff_s="0.2",
                outbound_max_attempts="30",
            ),
            connector_port,
            work_dir / "connector.log",
        )
        routers = [router("router-a"), router("router-b")]
        for s in (*routers, connector):
            await asyncio.to_thread(s.up)
        say(f"2 routers and a Telegram connector up; tenant {tenant}; {messages} messages at ~{rate:.0f}/s")

        async def restart(service: Service) -> None:
            service.kill9()
            await asyncio.sleep(1.0)
            await asyncio.to_thread(service.up)

        async def server_outage(what: str, seconds: float) -> None:
            await asyncio.to_thread(services_sh, f"{what}-down")
            await asyncio.sleep(seconds)
            await asyncio.to_thread(services_sh, f"{what}-up")

        async def latency(seconds: float) -> None:
            proxy.delay_s = 0.05
            await asyncio.sleep(seconds)
            proxy.delay_s = 0.0

        async def loss() -> None:
            for _ in range(3):
                proxy.drop_all()
                await asyncio.sleep(0.7)

        faults = [
            Fault(0.05, "kill -9 router-a, restart", lambda: restart(routers[0])),
            Fault(0.18, "kill -9 router-b, restart", lambda: restart(routers[1])),
            Fault(0.30, "kill -9 connector-telegram, restart", lambda: restart(connector)),
            Fault(0.42, "50 ms latency each way between routers and PostgreSQL for 4 s", lambda: latency(4.0)),
            Fault(0.52, "connections between routers and PostgreSQL dropped, 3 times", loss),
        ]
        if ours:
            faults += [
                Fault(0.62, "Kafka broker stopped for 4 s, restarted", lambda: server_outage("kafka", 4.0)),
                Fault(0.78, "PostgreSQL stopped for 3 s, restarted", lambda: server_outage("postgres", 3.0)),
            ]
        else:
            say("servers given by URL: the Kafka and PostgreSQL restarts are left out (not ours to stop)")
        injected: list[dict[str, Any]] = []
        started = time.monotonic()
        try:
            sent = {"n": 0}
            stop_agents = asyncio.Event()
            agents = asyncio.create_task(_agents(db, tenant, routers, key, tally, stop_agents))
            traffic = asyncio.create_task(_traffic(messages, rate, routers, connector, key, tally, sent))
            duration = messages / rate
            for fault in faults:
                while time.monotonic() - started < fault.at * duration and not traffic.done():
                    await asyncio.sleep(0.05)
                if traffic.done():
                    say(f"traffic ended before: {fault.name}")
                t0 = time.monotonic()
                say(f"fault at {sent['n']} sent: {fault.name}")
                await fault.run()
                injected.append(
                    {"fault": fault.name, "at_message": sent["n"], "took_s": round(time.monotonic() - t0, 1)}
                )
            await traffic
            say(
                f"traffic done: {len(tally.accepted)} accepted, {tally.duplicate_webhooks} duplicate webhooks "
                f"replayed, {tally.client_retries} client retries"
            )
            stored = await _settle(db, tenant, tally)
            stop_agents.set()
            await agents
            await _drain_replies(fake, tally)
            result = await _check(db, tenant, tally, fake, stored)
        finally:
            for s in (*routers, connector):
                await asyncio.to_thread(s.down)
            await proxy.stop()
            await db.close()
    result.update(
        faults=injected,
        seconds=round(time.monotonic() - started, 1),
        machine={"cores": os.cpu_count(), "commit": _commit()},
    )
    return result


async def _post(http: httpx.AsyncClient, urls: list[str], json: Any, headers: dict[str, str], tally: Tally) -> bool:
    """POST until one replica accepts it (clients retry; the idempotency key makes a retry the same event)."""
    for attempt in range(200):
        url = urls[attempt % len(urls)]
        try:
            r = await http.post(url, json=json, headers=headers)
            if r.status_code < 300:
                return True
            if r.status_code < 500 and r.status_code != 429:
                return False
        except httpx.HTTPError:
            pass
        tally.client_retries += 1
        await asyncio.sleep(min(2.0, 0.05 * (attempt + 1)))
    return False


async def _traffic(
    n: int, rate: float, routers: list[Service], connector: Service, key: str, tally: Tally, sent: dict[str, int]
) -> None:
    rnd = random.Random(11)
    customers = max(1, n // 8)
    auth = {"Authorization": f"Bearer {key}"}
    hook = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(timeout=10, limits=limits) as http:
        pending: set[asyncio.Task[None]] = set()

        async def one(i: int) -> None:
            token = f"m{i:07d}"
            customer = rnd.randrange(customers)
            if i % 2 == 0:
                body = {"customer": {"external_id": f"c{customer}"}, "text": f"{token} hello", "idempotency_key": token}
                urls = [f"{r.base}/v1/messages" for r in (routers if i % 4 == 0 else routers[::-1])]
                ok = await _post(http, urls, body, auth, tally)
            else:
                update_ = {
                    "update_id": 100_000_000 + i,
                    "message": {
                        "message_id": i,
                        "from": {"id": 5_000_000 + customer, "is_bot": False, "first_name": "Fx"},
                        "chat": {"id": 5_000_000 + customer, "type": "private"},
                        "date": int(time.time()),
                        "text": f"{token} hello",
                    },
                }
                url = f"{connector.base}/webhooks/telegram"
                ok = await _post(http, [url], update_, hook, tally)
                if ok and rnd.random() < 0.05:  # the provider delivers it again
                    tally.duplicate_webhooks += 1
                    await _post(http, [url], update_, hook, tally)
            if ok:
                tally.accepted.add(token)

        interval = 1.0 / rate
        next_at = time.monotonic()
        in_flight = asyncio.Semaphore(48)  # a closed loop past this: clients wait for answers, as real ones do

        async def bounded(i: int) -> None:
            async with in_flight:
                await one(i)

        for i in range(n):
            while in_flight.locked():
                await asyncio.sleep(0.01)
            task = asyncio.create_task(bounded(i))
            pending.add(task)
            task.add_done_callback(pending.discard)
            sent["n"] = i + 1
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        await asyncio.gather(*pending)


async def _agents(
    db: Database, tenant: str, routers: list[Service], key: str, tally: Tally, stop: asyncio.Event
) -> None:
    """The desk at work: agents answer Telegram conversations and resolve what they hold, freeing capacity."""
    auth = {"Authorization": f"Bearer {key}"}
    n = 0
    async with httpx.AsyncClient(timeout=10) as http:
        while not stop.is_set():
            try:
                async with db.read() as conn:
                    c = t.conversations.c
                    rows = (
                        await conn.execute(
                            select(c.id, c.channel)
                            .where(c.tenant_id == tenant, c.status == "open", c.agent_id.is_not(None))
                            .limit(30)
                        )
                    ).all()
            except Exception:
                await asyncio.sleep(0.5)
                continue
            for row in rows:
                base = routers[n % 2].base
                n += 1
                try:
                    if row.channel == "telegram":
                        token = f"r{n:07d}"
                        r = await http.post(
                            f"{base}/v1/conversations/{row.id}/reply", json={"text": f"{token} on it"}, headers=auth
                        )
                        if r.status_code == 202:
                            tally.replies_accepted.add(token)
                    await http.post(f"{base}/v1/conversations/{row.id}/resolve", json={"survey": "none"}, headers=auth)
                except httpx.HTTPError:
                    pass  # a replica is down: the work is picked up again next round
            await asyncio.sleep(0.3)


async def _settle(db: Database, tenant: str, tally: Tally, timeout_s: float = 240) -> set[str]:
    """Wait until every accepted message is stored (or the time is up): what is stored."""
    deadline = time.monotonic() + timeout_s
    stored: set[str] = set()
    while time.monotonic() < deadline:
        async with db.read() as conn:
            m = t.messages.c
            rows = await conn.execute(
                select(m.text).where(m.tenant_id == tenant, m.direction == "inbound", m.text.like("m%"))
            )
            stored = {r.text.split(" ", 1)[0] for r in rows}
        if tally.accepted <= stored:
            break
        await asyncio.sleep(1.0)
    return stored


async def _drain_replies(fake: FakeProviders, tally: Tally, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        seen = {str((r.json or {}).get("text", "")).split(" ", 1)[0] for r in fake.requests}
        if tally.replies_accepted <= seen:
            return
        await asyncio.sleep(1.0)


async def _check(db: Database, tenant: str, tally: Tally, fake: FakeProviders, stored: set[str]) -> dict[str, Any]:
    async with db.read() as conn:
        m, e, a = t.messages.c, t.agent_events.c, t.agents.c
        texts = Counter(
            r.text.split(" ", 1)[0]
            for r in await conn.execute(
                select(m.text).where(m.tenant_id == tenant, m.direction == "inbound", m.text.like("m%"))
            )
        )
        capacity = {
            r.id: dict(r.capacity) for r in await conn.execute(select(a.id, a.capacity).where(a.tenant_id == tenant))
        }
        feed = (
            await conn.execute(
                select(e.agent_id, e.type, e.conversation_id, e.data)
                .where(e.tenant_id == tenant, e.type.in_(("offer", "assignment", "unassignment")))
                .order_by(e.seq)
            )
        ).all()
        live = (
            await conn.execute(
                select(t.assignments.c.conversation_id)
                .where(t.assignments.c.tenant_id == tenant, t.assignments.c.ended_at.is_(None))
                .group_by(t.assignments.c.conversation_id)
                .having(t.assignments.c.conversation_id.is_not(None))
            )
        ).all()
    # Replay every agent's feed in order: who holds what, on which channel.
    holder: dict[str, tuple[str, str]] = {}
    held: dict[tuple[str, str], set[str]] = defaultdict(set)
    double_assigned = capacity_violations = 0
    for row in feed:
        conv, agent = row.conversation_id, row.agent_id
        if row.type in ("offer", "assignment"):
            channel = row.data.get("channel", "?")
            current = holder.get(conv)
            if current is not None and current[0] != agent:
                double_assigned += 1
            if current is not None:
                held[current].discard(conv)
            holder[conv] = (agent, channel)
            held[(agent, channel)].add(conv)
            cap = capacity.get(agent, {})
            if len(held[(agent, channel)]) > int(cap.get(channel, cap.get("default", 0)) or 0):
                capacity_violations += 1
        elif holder.get(conv, ("", ""))[0] == agent:
            held[holder.pop(conv)].discard(conv)
    sends = Counter(str((r.json or {}).get("text", "")).split(" ", 1)[0] for r in fake.requests)
    replies_twice = sum(1 for token, count in sends.items() if token.startswith("r") and count > 1)
    result = {
        "messages": len(tally.accepted),
        "stored": len(stored),
        "lost": len(tally.accepted - stored),
        "duplicated": sum(count - 1 for count in texts.values() if count > 1),
        "double_assigned": double_assigned,
        "capacity_violations": capacity_violations,
        "replies": len(tally.replies_accepted),
        "replies_delivered_twice": replies_twice,
        "replies_lost": len(tally.replies_accepted - set(sends)),
        "duplicate_webhooks_replayed": tally.duplicate_webhooks,
        "client_retries": tally.client_retries,
        "assignment_events_replayed": len(feed),
        "live_assignments": len(live),
    }
    return result


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
