"""The bare pipeline: the router's topology with no logic, the limit of the parts on this machine.

Consume conversation events with the router's consumer settings (``KafkaBus.subscribe``: the same client, fetch
wait and poll size) and batch size (``consumer_batch_max``) → one ``INSERT ... SELECT FROM unnest(...)`` per batch
(asyncpg, autocommit: the statement is the commit) → one result record per message to a result topic with the
router's producer → commit the offsets. The result carries the event's ``event_id`` and ``received_at`` as the
router's feed events do, so one listener measures both. Runs in a process of its own, in place of the router.

Driven over a pipe: answers ``("ready",)`` once subscribed; ``("stop",)`` ends it, answering
``("done", batches, records)``."""

from __future__ import annotations

import asyncio
from multiprocessing.connection import Connection

import asyncpg  # type: ignore[import-untyped]
import orjson

from shared.bus import Outgoing
from shared.bus_kafka import KafkaBus

TABLE = "bench_bare"
CREATE = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    tenant_id text NOT NULL, event_id text NOT NULL, received_at timestamptz NOT NULL, body bytea NOT NULL,
    PRIMARY KEY (tenant_id, event_id))"""
INSERT = f"""INSERT INTO {TABLE} (tenant_id, event_id, received_at, body)
    SELECT t, e, r::timestamptz, b FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[]) AS u(t, e, r, b)
    ON CONFLICT DO NOTHING"""


def dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://")


async def work(
    conn: Connection, bus: KafkaBus, database_url: str, topic: str, results: str, group: str, batch_max: int
) -> tuple[int, int]:
    pg = await asyncpg.connect(dsn(database_url))
    await pg.execute(CREATE)
    consumer = await bus.subscribe([topic], group)
    conn.send(("ready",))
    batches = records_seen = 0
    try:
        while not conn.poll():
            records = await consumer.getmany(0.2, batch_max)
            if not records:
                continue
            events = [orjson.loads(r.value) for r in records]
            await pg.execute(
                INSERT,
                [e["tenant"] for e in events],
                [e["id"] for e in events],
                [e["received_at"] for e in events],
                [r.value for r in records],
            )
            await bus.publish(
                [
                    Outgoing(results, orjson.dumps({"event_id": e["id"], "received_at": e["received_at"]}), r.key)
                    for e, r in zip(events, records, strict=True)
                ]
            )
            await consumer.commit()
            batches += 1
            records_seen += len(records)
    finally:
        await consumer.close()
        await pg.close()
    return batches, records_seen


def serve(
    conn: Connection,
    bootstrap: str,
    database_url: str,
    topic: str,
    results: str,
    group: str,
    partitions: int,
    batch_max: int,
) -> None:
    loop = asyncio.new_event_loop()
    bus = KafkaBus(bootstrap, client_id="bench-bare", partitions=partitions, topics=[topic, results])
    loop.run_until_complete(bus.start())
    try:
        batches, records = loop.run_until_complete(work(conn, bus, database_url, topic, results, group, batch_max))
        conn.recv()
        conn.send(("done", batches, records))
    finally:
        loop.run_until_complete(bus.close())
        loop.close()
