"""One contract, two buses: the consume loop isolates a poison record and retries an unavailable store.

A batch of 500 in which one record makes the handler raise a data error: 499 applied, that one dead-lettered
with its reason, partition and offset, offsets committed (a new member of the group gets nothing). A
connection error: nothing committed, the same batch comes again."""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import DataError, OperationalError

from shared.bus import Bus, Outgoing, Record
from shared.consumer_loop import consume
from tests.conftest import random_name
from tests.support.consumers import drain, reading


class _PgError(Exception):
    """What asyncpg raises, as far as a classifier can see it: a message and a SQLSTATE."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def data_error() -> DataError:
    orig = _PgError('invalid byte sequence for encoding "UTF8": 0x00', "22021")
    return DataError("INSERT INTO messages ...", {"text": "secret customer text"}, orig)


def connection_error() -> OperationalError:
    orig = _PgError("connection was closed in the middle of operation", "08006")
    return OperationalError("SELECT 1", {}, orig)


async def _topics(bus: Bus) -> tuple[str, str]:
    source, dead = random_name("poison-"), random_name("dead-")
    await bus.ensure_topics([source, dead])
    return source, dead


async def _publish(bus: Bus, topic: str, n: int) -> None:
    # one key: one partition, so the 500 arrive in one batch of 500 on both buses
    await bus.publish([Outgoing(topic, f"m{i}".encode(), key=b"tenant-1") for i in range(n)])


async def _run_until(stop: asyncio.Event, task: asyncio.Task[None], done: asyncio.Event, timeout_s: float) -> None:
    try:
        await asyncio.wait_for(done.wait(), timeout_s)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def _everything(bus: Bus, topic: str, want: int, timeout_s: float = 20) -> list[Record]:
    async with reading(bus, topic) as consumer:
        got = await drain(consumer, want, timeout_s)
        return got + await consumer.getmany(0.5, 1000)  # and nothing more


async def _left_for(bus: Bus, topic: str, group: str) -> list[Record]:
    """What a new member of ``group`` is given: everything not committed."""
    consumer = await bus.subscribe([topic], group)
    got: list[Record] = []
    try:
        loop = asyncio.get_running_loop()
        end = loop.time() + 3
        while loop.time() < end:
            got += await consumer.getmany(0.2, 1000)
    finally:
        await consumer.close()
    return got


async def test_one_poison_record_in_500_is_deadlettered_and_the_other_499_applied(bus: Bus) -> None:
    source, dead = await _topics(bus)
    await _publish(bus, source, 500)
    group = random_name("g-")
    applied: list[bytes] = []
    batches: list[int] = []
    done, stop = asyncio.Event(), asyncio.Event()

    async def handle(records: list[Record]) -> None:
        batches.append(len(records))
        if any(r.value == b"m137" for r in records):
            raise data_error()  # all or nothing, like the context stage's one transaction per batch
        applied.extend(r.value for r in records)
        if len(applied) >= 499:
            done.set()

    task = asyncio.create_task(consume(bus, [source], group, handle, stop, deadletter_topic=dead))
    await _run_until(stop, task, done, 60)

    assert sorted(applied) == sorted(f"m{i}".encode() for i in range(500) if i != 137)
    assert len(applied) == len(set(applied)) == 499
    assert batches[0] == 500  # the whole batch was tried first
    letters = await _everything(bus, dead, 1)
    assert [r.value for r in letters] == [b"m137"]
    letter = letters[0]
    assert letter.key == b"tenant-1"
    assert letter.header("source-topic") == source.encode()
    assert letter.header("source-offset") == b"137"
    partition = letter.header("source-partition")
    assert partition is not None and int(partition) in range(4)
    reason = (letter.header("reason") or b"").decode()
    assert "DataError" in reason and "22021" in reason and "0x00" in reason
    assert "secret customer text" not in reason  # the statement's parameters never reach the header
    assert letter.header("kind") == b"DataError"
    assert await _left_for(bus, source, group) == []  # offsets committed


async def test_a_connection_error_commits_nothing_and_the_batch_comes_again(bus: Bus) -> None:
    source, dead = await _topics(bus)
    await _publish(bus, source, 500)
    group = random_name("g-")
    seen: list[list[bytes]] = []
    done, stop = asyncio.Event(), asyncio.Event()

    async def failing(records: list[Record]) -> None:
        seen.append([r.value for r in records])
        if len(seen) >= 3:
            done.set()
        raise connection_error()

    task = asyncio.create_task(consume(bus, [source], group, failing, stop, deadletter_topic=dead, max_backoff_s=0.2))
    await _run_until(stop, task, done, 60)
    # the same records came again, whole (never split: the store was down, not the records bad)
    assert len(seen) >= 3
    assert seen[0] == seen[1] == seen[2]
    assert sorted(seen[0]) == sorted(f"m{i}".encode() for i in range(500))
    assert await _left_for(bus, source, group) != []  # nothing committed: a new member gets them all
    left = await _left_for(bus, source, group)
    assert len(left) == 500
    assert await _everything(bus, dead, 0, timeout_s=2) == []  # nothing dead-lettered

    # the store is back: the same group applies all 500, once
    applied: list[bytes] = []
    done2, stop2 = asyncio.Event(), asyncio.Event()

    async def working(records: list[Record]) -> None:
        applied.extend(r.value for r in records)
        if len(applied) >= 500:
            done2.set()

    task2 = asyncio.create_task(consume(bus, [source], group, working, stop2, deadletter_topic=dead))
    await _run_until(stop2, task2, done2, 60)
    assert sorted(applied) == sorted(f"m{i}".encode() for i in range(500))
