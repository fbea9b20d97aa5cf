"""What the consume loop tells Prometheus of its batches: how many records each took and how long each took to
handle (``switchboard_consumer_batch_records`` / ``switchboard_consumer_batch_seconds``, per group), read back
through the registry the ``/metrics`` endpoint serves."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from shared.bus import Outgoing, Record
from shared.bus_memory import MemoryBus
from shared.consumer_loop import consume
from tests.conftest import random_name

HANDLING_S = 0.03  # what the handler below spends on each batch


def sample(name: str, group: str) -> float:
    return REGISTRY.get_sample_value(name, {"group": group}) or 0.0


async def test_each_batch_handled_is_counted_with_its_records_and_its_time() -> None:
    bus = MemoryBus(partitions=2)
    await bus.ensure_topics(["events", "dead"])
    group = random_name("g")
    sizes: list[int] = []
    stop = asyncio.Event()

    async def handle(records: list[Record]) -> None:
        await asyncio.sleep(HANDLING_S)
        sizes.append(len(records))
        if sum(sizes) >= 25:
            stop.set()

    await bus.publish([Outgoing("events", f"{n}".encode(), f"k{n % 5}".encode()) for n in range(10)])
    task = asyncio.create_task(consume(bus, ["events"], group, handle, stop, deadletter_topic="dead", poll_s=0.02))
    while sum(sizes) < 10:
        await asyncio.sleep(0.01)
    await bus.publish([Outgoing("events", f"{n}".encode(), f"k{n % 5}".encode()) for n in range(10, 25)])
    await asyncio.wait_for(task, 10)

    assert len(sizes) >= 2, "two publications, at least two batches"
    assert sample("switchboard_consumer_batch_records_count", group) == len(sizes)
    assert sample("switchboard_consumer_batch_records_sum", group) == 25
    assert REGISTRY.get_sample_value(
        "switchboard_consumer_batch_records_bucket", {"group": group, "le": "+Inf"}
    ) == len(sizes)
    assert sample("switchboard_consumer_batch_seconds_count", group) == len(sizes)
    spent = sample("switchboard_consumer_batch_seconds_sum", group)
    assert HANDLING_S * len(sizes) <= spent < 5, "the handling time of each batch, not the time between fetches"


async def test_a_batch_that_failed_is_not_counted_as_handled() -> None:
    bus = MemoryBus()
    await bus.ensure_topics(["events", "dead"])
    group = random_name("g")
    stop = asyncio.Event()
    calls = 0

    async def handle(records: list[Record]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionResetError("the database went away")  # retriable: the batch comes again
        stop.set()

    await bus.publish([Outgoing("events", b"x", b"k")])
    await asyncio.wait_for(
        consume(bus, ["events"], group, handle, stop, deadletter_topic="dead", poll_s=0.02, max_backoff_s=0.05), 10
    )
    assert calls == 2
    assert sample("switchboard_consumer_batch_records_count", group) == 1, "the batch once: when it was handled"
