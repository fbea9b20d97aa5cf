"""A batch handled in lanes (``shared/consumer_loop.handle_in_lanes``): partitions at the same time, each
partition's records in one lane and in their order, every record once; a poison record dead-lettered in its lane
while the others apply; a retriable failure raised only after every lane finished."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest

from shared.bus import Record
from shared.bus_memory import MemoryBus
from shared.consumer_loop import handle_in_lanes

TOPICS = ("events", "commands")  # co-partitioned: a key has the same partition number on both


def batch(partitions: int, per_partition: int) -> list[Record]:
    """Interleaved as a fetch returns them: partition after partition, both topics."""
    out = []
    for n in range(per_partition):
        for p in range(partitions):
            topic = TOPICS[n % 2]
            out.append(Record(topic, p, n, f"k{p}".encode(), f"{p}:{n}".encode()))
    return out


class Recorder:
    """A handler that waits on 'the database' and remembers what it saw and how many ran at once."""

    def __init__(self, poison: bytes | None = None, retriable_in: int | None = None) -> None:
        self.seen: list[bytes] = []
        self.running = 0
        self.most = 0
        self.poison = poison
        self.retriable_in = retriable_in
        self.finished: list[int] = []

    async def __call__(self, records: list[Record]) -> None:
        if self.poison is not None and any(r.value == self.poison for r in records):
            raise ValueError("a value no store holds")
        if self.retriable_in is not None and any(r.partition == self.retriable_in for r in records):
            raise ConnectionResetError("the database went away")  # at once, while the other lanes still work
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(0.01)
            self.seen += [r.value for r in records]
            self.finished.append(records[0].partition)
        finally:
            self.running -= 1


def per_partition(values: list[bytes]) -> dict[int, list[int]]:
    order: dict[int, list[int]] = defaultdict(list)
    for v in values:
        p, n = v.decode().split(":")
        order[int(p)].append(int(n))
    return dict(order)


async def test_lanes_run_at_once_and_keep_each_partitions_order() -> None:
    bus = MemoryBus()
    records = batch(partitions=8, per_partition=10)
    handler = Recorder()
    await handle_in_lanes(bus, records, handler, "dead", "g", lanes=4)
    assert sorted(handler.seen) == sorted(r.value for r in records), "every record once"
    assert per_partition(handler.seen) == {p: list(range(10)) for p in range(8)}, "each partition in its order"
    assert handler.most == 4, "four transactions at once"


async def test_one_lane_is_the_whole_batch_in_order() -> None:
    records = batch(partitions=8, per_partition=3)
    handler = Recorder()
    await handle_in_lanes(MemoryBus(), records, handler, "dead", "g", lanes=1)
    assert handler.seen == [r.value for r in records] and handler.most == 1


async def test_a_poison_record_is_dead_lettered_in_its_lane_and_every_other_record_applied() -> None:
    bus = MemoryBus()
    await bus.ensure_topics(["dead"])
    records = batch(partitions=4, per_partition=5)
    handler = Recorder(poison=b"2:3")
    await handle_in_lanes(bus, records, handler, "dead", "g", lanes=4)
    assert sorted(handler.seen) == sorted(r.value for r in records if r.value != b"2:3")
    consumer = await bus.subscribe(["dead"], "reader")
    dead = await consumer.getmany(0.5, 10)
    assert len(dead) == 1 and dead[0].value == b"2:3"


async def test_a_retriable_failure_is_raised_after_every_other_lane_finished() -> None:
    records = batch(partitions=4, per_partition=5)
    handler = Recorder(retriable_in=1)
    with pytest.raises(ConnectionResetError):
        await handle_in_lanes(MemoryBus(), records, handler, "dead", "g", lanes=4)
    assert sorted(handler.finished) == [0, 2, 3], "the other lanes were not abandoned half-way"
    assert handler.running == 0
