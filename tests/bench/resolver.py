"""The agents of the benchmark's desk, in a process of their own: they accept every offer at once and resolve
every conversation assigned to them ``handle_s`` after it was, so their capacity frees as on a real desk.

They read their work from ``routing.assignments`` (as the consoles' feeds do) and act through the routing command
log (``shared.routing_commands``: the path the HTTP API's accept and resolve routes submit to as well), in
batches. Driven over a pipe: it answers ``("ready",)`` once subscribed; ``("stop",)`` ends it and it answers
``("done", accepted, resolved)``."""

from __future__ import annotations

import asyncio
import heapq
import time
from multiprocessing.connection import Connection

import orjson

from shared.bus import Outgoing
from shared.bus_kafka import KafkaBus
from shared.routing_commands import Accept, Command, Resolve
from shared.topics import Topics
from tests.conftest import random_name


async def work(conn: Connection, bus: KafkaBus, topics: Topics, handle_s: float) -> tuple[int, int]:
    consumer = await bus.subscribe([topics.assignments], random_name("bench-agents-"), from_beginning=False)
    conn.send(("ready",))
    due: list[tuple[float, str, str]] = []  # (resolve at, tenant, conversation)
    accepted = resolved = 0
    try:
        while not conn.poll():
            out: list[Outgoing] = []
            for record in await consumer.getmany(0.05, 2000):
                event = orjson.loads(record.value)
                kind, tenant, conversation = event.get("type"), event.get("tenant"), event.get("conversation_id")
                if kind == "offer":
                    out.append(
                        Command.of(tenant, Accept(agent_id=event["agent_id"], conversation_id=conversation)).record(
                            topics
                        )
                    )
                    accepted += 1
                elif kind == "assignment":
                    heapq.heappush(due, (time.monotonic() + handle_s, tenant, conversation))
            now = time.monotonic()
            while due and due[0][0] <= now:
                _, tenant, conversation = heapq.heappop(due)
                out.append(Command.of(tenant, Resolve(conversation_id=conversation, survey="none")).record(topics))
                resolved += 1
            if out:
                await bus.publish(out)
    finally:
        await consumer.close()
    return accepted, resolved


def serve(conn: Connection, bootstrap: str, prefix: str, partitions: int, handle_s: float) -> None:
    topics = Topics(prefix)
    loop = asyncio.new_event_loop()
    bus = KafkaBus(bootstrap, client_id="bench-agents", partitions=partitions)
    loop.run_until_complete(bus.start())
    try:
        accepted, resolved = loop.run_until_complete(work(conn, bus, topics, handle_s))
        conn.recv()
        conn.send(("done", accepted, resolved))
    finally:
        loop.run_until_complete(bus.close())
        loop.close()
