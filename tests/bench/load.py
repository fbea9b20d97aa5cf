"""The load generator: a process of its own (never the router's, never the one that measures), producing
pre-encoded conversation events at a fixed rate with the producer every Switchboard process uses
(``shared.bus_kafka.KafkaBus``: idempotent, acks=all, linger 2 ms), in batches per 5 ms tick.

Driven over a pipe by ``bench_pipeline``: ``("build", tag, rate, seconds, topic)`` encodes a phase's payloads
(before its clock starts) and answers ``("ready", count)``; ``("go",)`` sends them and answers ``("done", stamps,
elapsed_s, failed)``, where ``stamps`` lists ``(first index, Unix time)`` of each produced batch, so every
event's produce time is known from its index; ``("stop",)`` ends the process."""

from __future__ import annotations

import asyncio
import time
from multiprocessing.connection import Connection

from shared.bus import Outgoing
from shared.bus_kafka import KafkaBus
from tests.bench.workload import Workload, stamp

TICK_S = 0.005
MAX_IN_FLIGHT = 256  # publish calls awaiting their acks


async def send(
    bus: KafkaBus, topic: str, items: list[tuple[bytes, list[bytes]]], rate: float
) -> tuple[list[tuple[int, float]], float, int]:
    """Every due message each tick, stamped with the instant it is handed to the producer."""
    stamps: list[tuple[int, float]] = []
    in_flight: set[asyncio.Task[None]] = set()
    total, sent, failed = len(items), 0, 0
    started = time.monotonic()
    while sent < total:
        due = min(total, int(rate * (time.monotonic() - started)) + 1)
        if due > sent:
            at = time.time()
            now = stamp(at)
            batch = [Outgoing(topic, now.join(parts), key) for key, parts in items[sent:due]]
            stamps.append((sent, at))
            task = asyncio.create_task(bus.publish(batch))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            sent = due
            if len(in_flight) >= MAX_IN_FLIGHT:
                await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.sleep(TICK_S)
    for outcome in await asyncio.gather(*in_flight, return_exceptions=True):
        failed += isinstance(outcome, BaseException)
    return stamps, time.monotonic() - started, failed


def serve(conn: Connection, bootstrap: str, tenants: tuple[str, ...], follow_ups: float, window_s: float) -> None:
    workload = Workload(tenants, follow_ups, window_s)
    loop = asyncio.new_event_loop()
    bus = KafkaBus(bootstrap, client_id="bench-load", partitions=len(tenants))
    loop.run_until_complete(bus.start())
    items: list[tuple[bytes, list[bytes]]] = []
    rate, topic = 0.0, ""
    try:
        while True:
            message = conn.recv()
            if message[0] == "build":
                _, tag, rate, seconds, topic = message
                items = workload.payloads(tag, rate, seconds)
                conn.send(("ready", len(items)))
            elif message[0] == "go":
                stamps, elapsed, failed = loop.run_until_complete(send(bus, topic, items, rate))
                conn.send(("done", stamps, elapsed, failed))
            else:
                conn.send(("done",))
                return
    finally:
        loop.run_until_complete(bus.close())
        loop.close()
