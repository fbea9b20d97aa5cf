"""A batch handled in lanes (``shared/consumer_loop.handle_in_lanes``): one lane per so many records (a small
batch in one transaction), partitions at the same time, each partition's records in one lane and in their
order, every record once; a poison record dead-lettered in its lane
while the others apply; a retriable failure raised only after every lane finished."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest

from shared.bus import Outgoing, Record
from shared.bus_memory import MemoryBus
from shared.consumer_loop import consume, handle_in_lanes, lanes_for

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


@pytest.mark.parametrize(
    ("records", "lanes", "lane_records", "expected"),
    [
        (1, 4, 100, 1),
        (99, 4, 100, 1),
        (199, 4, 100, 1),
        (200, 4, 100, 2),
        (399, 4, 100, 3),
        (400, 4, 100, 4),
        (500, 4, 100, 4),  # never more than the lanes configured
        (500, 1, 100, 1),
        (3, 4, 1, 3),
        (0, 4, 100, 1),
    ],
)
def test_a_batch_gets_one_lane_per_so_many_records(records: int, lanes: int, lane_records: int, expected: int) -> None:
    assert lanes_for(records, lanes, lane_records) == expected


async def consumed_in_one_call(size: int, lanes: int, lane_records: int) -> Recorder:
    """``consume`` with lanes over a batch of ``size`` records of 40 keys on 4 partitions: the handler's calls."""
    bus = MemoryBus(partitions=4)
    await bus.ensure_topics(["events", "dead"])
    await bus.publish([Outgoing("events", f"{n % 40}:{n // 40}".encode(), f"k{n % 40}".encode()) for n in range(size)])
    handler = Recorder()
    stop = asyncio.Event()

    async def handle(records: list[Record]) -> None:
        await handler(records)
        if len(handler.seen) >= size:
            stop.set()

    await asyncio.wait_for(
        consume(
            bus, ["events"], "g", handle, stop, deadletter_topic="dead", poll_s=0.05, lanes=lanes,
            lane_records=lane_records,
        ),
        10,
    )  # fmt: skip
    assert len(handler.seen) == size
    return handler


async def test_a_small_batch_is_one_transaction_and_a_big_one_is_split() -> None:
    small = await consumed_in_one_call(40, lanes=4, lane_records=100)
    assert len(small.finished) == 1 and small.most == 1, "a batch of 40 in one lane"
    big = await consumed_in_one_call(400, lanes=4, lane_records=100)
    assert big.most == 4, "a batch of 400 in four lanes at once"
