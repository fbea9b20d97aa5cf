"""What the measuring process observes, without asking the router anything:

- ``Listener``: the records an agent's feed would get (``routing.assignments``, or the bare pipeline's result
  topic), stamped when first seen, by the ``event_id`` and ``received_at`` of the conversation event that caused
  them (``shared.feed_events._Caused``);
- ``Commits``: every offset commit of the watched consumer groups, read from Kafka's own ``__consumer_offsets``
  log (key and value schemas: Kafka's ``OffsetCommitKey`` v0/v1 and ``OffsetCommitValue`` v0-v4, all of which
  start with the offset). A consumer commits once per batch after its effects are durable
  (``shared/consumer_loop.py``), so consecutive commit records of a group with one timestamp are one batch and
  the offsets they advance are its size;
- ``PgStats``: statement and transaction counts of the benchmark's database (pg_stat_statements,
  pg_stat_database), its own queries excluded by a tag."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from dataclasses import dataclass, field

import asyncpg  # type: ignore[import-untyped]
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.bus_kafka import KafkaBus
from tests.bench.bare import dsn
from tests.conftest import random_name

OFFSETS_TOPIC = "__consumer_offsets"


class Listener:
    """First sighting of each event id on ``topic``: (seen at, received_at as sent, feed event type)."""

    def __init__(self, bus: KafkaBus, topic: str) -> None:
        self.bus, self.topic = bus, topic
        self.seen: dict[str, tuple[float, str, str]] = {}
        self.records = 0
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        consumer = await self.bus.subscribe([self.topic], random_name("bench-listen-"), from_beginning=False)

        async def run() -> None:
            try:
                while not self._stop.is_set():
                    records = await consumer.getmany(0.02, 5000)
                    at = time.time()
                    self.records += len(records)
                    for record in records:
                        event = orjson.loads(record.value)
                        event_id = event.get("event_id")
                        if event_id and event_id not in self.seen:
                            self.seen[event_id] = (at, event.get("received_at", ""), event.get("type", "result"))
            finally:
                with contextlib.suppress(Exception):  # a broker gone away must not hide what was measured
                    await consumer.close()

        self._task = asyncio.create_task(run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task:
            await self._task


async def offsets_partitions(bootstrap: str, within_s: float = 60.0) -> list[int]:
    """The partitions of Kafka's offsets log. A broker creates that topic when a group first looks for its
    coordinator, so on a fresh broker (no group has committed yet) this asks for one and waits for the topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + within_s
        while True:
            (described,) = await admin.describe_topics([OFFSETS_TOPIC])
            if described["partitions"]:
                return [p["partition"] for p in described["partitions"]]
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kafka at {bootstrap} created no {OFFSETS_TOPIC} within {within_s:.0f} s")
            with contextlib.suppress(Exception):  # not available while the broker creates the topic
                await admin.find_coordinator(random_name("bench-probe-"))
            await asyncio.sleep(0.5)
    finally:
        await admin.close()


@dataclass
class Batch:
    at: float  # commit time (broker clock = this machine's)
    sizes: dict[str, int]  # topic → records the batch took from it


@dataclass
class Commits:
    bootstrap: str
    groups: set[str] = field(default_factory=set)
    batches: dict[str, list[Batch]] = field(default_factory=dict)
    committed: dict[str, dict[tuple[str, int], int]] = field(default_factory=dict)
    _pending: dict[str, Batch] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, exclude_internal_topics=False
        )
        await consumer.start()
        partitions = [TopicPartition(OFFSETS_TOPIC, p) for p in await offsets_partitions(self.bootstrap)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:
            await consumer.position(tp)

        async def run() -> None:
            try:
                while not self._stop.is_set():
                    fetched = await consumer.getmany(timeout_ms=100)
                    for records in fetched.values():
                        for r in records:
                            self._note(r.key, r.value, r.timestamp / 1000)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()

        self._task = asyncio.create_task(run())

    def _note(self, key: bytes | None, value: bytes | None, at: float) -> None:
        if not key or value is None or struct.unpack_from(">h", key)[0] > 1:
            return  # a group metadata record, or a tombstone
        n = struct.unpack_from(">h", key, 2)[0]
        group = key[4 : 4 + n].decode()
        if group not in self.groups:
            return
        m = struct.unpack_from(">h", key, 4 + n)[0]
        topic = key[6 + n : 6 + n + m].decode()
        (partition,) = struct.unpack_from(">i", key, 6 + n + m)
        (offset,) = struct.unpack_from(">q", value, 2)
        last = self.committed.setdefault(group, {})
        delta = max(0, offset - last.get((topic, partition), 0))
        last[(topic, partition)] = offset
        pending = self._pending.get(group)
        if pending is None or pending.at != at:
            self._flush(group)
            pending = self._pending[group] = Batch(at, {})
        pending.sizes[topic] = pending.sizes.get(topic, 0) + delta

    def _flush(self, group: str) -> None:
        pending = self._pending.pop(group, None)
        if pending is not None and any(pending.sizes.values()):
            self.batches.setdefault(group, []).append(pending)

    def between(self, group: str, start: float, end: float) -> list[Batch]:
        self._flush(group)
        return [b for b in self.batches.get(group, []) if start < b.at <= end]

    def total(self, group: str, topic: str) -> int:
        return sum(o for (t, _), o in self.committed.get(group, {}).items() if t == topic)

    async def stop(self) -> None:
        self._stop.set()
        if self._task:
            await self._task


TAG = "/* bench-monitor */"


class PgStats:
    """Counts of the benchmark's database since the server started; phases take differences."""

    def __init__(self, database_url: str) -> None:
        self.url = dsn(database_url)
        self._conn: asyncpg.Connection | None = None

    async def start(self) -> None:
        self._conn = await asyncpg.connect(self.url)
        await self._conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    async def snapshot(self) -> tuple[dict[str, int], int]:
        """({statement text: calls}, committed transactions) of this database."""
        assert self._conn is not None
        rows = await self._conn.fetch(
            f"""{TAG} SELECT query, sum(calls)::bigint AS calls FROM pg_stat_statements
            WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND query NOT LIKE '%bench-monitor%' GROUP BY query"""
        )
        xacts = await self._conn.fetchval(
            f"{TAG} SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
        return {r["query"]: r["calls"] for r in rows}, int(xacts)

    async def analyze(self) -> None:
        """Statistics of every table, as autovacuum keeps them on a database with history."""
        assert self._conn is not None
        await self._conn.execute(f"{TAG} ANALYZE")

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
