"""One contract, two buses: the in-process MemoryBus and the Kafka bus on a real broker behave alike in
everything the services rely on."""

from __future__ import annotations

import asyncio

import pytest

from shared.bus import Bus, Consumer, Outgoing, Record
from tests.conftest import random_name
from tests.support.consumers import drain


@pytest.fixture
async def topic(bus: Bus) -> str:
    name = random_name("contract-")
    await bus.ensure_topics([name])
    return name


async def quiet(consumer: Consumer, seconds: float = 1.5) -> list[Record]:
    """Whatever arrives within ``seconds`` (expected: nothing)."""
    got: list[Record] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        got.extend(await consumer.getmany(0.2, 1000))
    return got


def records(topic: str, n: int, keys: int = 5) -> list[Outgoing]:
    return [
        Outgoing(topic, f"v{i}".encode(), key=f"k{i % keys}".encode(), headers=(("h", str(i).encode()),))
        for i in range(n)
    ]


async def test_published_records_arrive_with_key_order_and_headers(bus: Bus, topic: str) -> None:
    consumer = await bus.subscribe([topic], random_name("g-"))
    await bus.publish(records(topic, 50))
    got = await drain(consumer, 50)
    await consumer.close()
    assert sorted(r.value for r in got) == sorted(f"v{i}".encode() for i in range(50))
    for key in {r.key for r in got}:
        values = [int(r.value[1:]) for r in got if r.key == key]
        assert values == sorted(values), "one key's records must stay in publish order"
    assert all(r.header("h") == r.value[1:] for r in got)


async def test_committed_records_are_not_delivered_again_to_the_group(bus: Bus, topic: str) -> None:
    group = random_name("g-")
    await bus.publish(records(topic, 20))
    first = await bus.subscribe([topic], group)
    assert len(await drain(first, 20)) == 20
    await first.commit()
    await first.close()
    await bus.publish(records(topic, 3))
    second = await bus.subscribe([topic], group)
    got = await drain(second, 3)
    got += await quiet(second, 1.0)
    await second.close()
    assert len(got) == 3


async def test_committing_a_batch_leaves_what_was_fetched_after_it_to_be_delivered_again(bus: Bus, topic: str) -> None:
    """The consume loop commits a batch while it handles the next: only the batch's records count as done."""
    group = random_name("g-")
    await bus.publish(records(topic, 20, keys=1))  # one key: one partition, in order
    first = await bus.subscribe([topic], group)
    batch = await drain(first, 20)
    done, later = batch[:8], batch[8:]
    await first.commit(done)
    await first.close()  # crashed while handling the records after the batch
    second = await bus.subscribe([topic], group)
    again = await drain(second, 12)
    again += await quiet(second, 1.0)
    await second.close()
    assert [r.value for r in again] == [r.value for r in later]


async def test_uncommitted_records_are_delivered_again_after_a_member_leaves(bus: Bus, topic: str) -> None:
    group = random_name("g-")
    await bus.publish(records(topic, 10))
    first = await bus.subscribe([topic], group)
    assert len(await drain(first, 10)) == 10
    await first.close()  # crashed before commit
    second = await bus.subscribe([topic], group)
    again = await drain(second, 10)
    await second.close()
    assert sorted(r.value for r in again) == sorted(f"v{i}".encode() for i in range(10))


async def test_every_group_gets_every_record(bus: Bus, topic: str) -> None:
    a = await bus.subscribe([topic], random_name("g-"))
    b = await bus.subscribe([topic], random_name("g-"))
    await bus.publish(records(topic, 12))
    got_a, got_b = await asyncio.gather(drain(a, 12), drain(b, 12))
    await a.close()
    await b.close()
    assert len(got_a) == len(got_b) == 12


async def test_members_of_one_group_share_the_records_without_overlap(bus: Bus, topic: str) -> None:
    group = random_name("g-")
    a = await bus.subscribe([topic], group)
    b = await bus.subscribe([topic], group)
    await bus.publish(records(topic, 200, keys=50))
    got: list[Record] = []
    async with asyncio.timeout(30):
        while len(got) < 200:
            ra, rb = await asyncio.gather(a.getmany(0.2, 1000), b.getmany(0.2, 1000))
            got += ra + rb
            await a.commit()
            await b.commit()
    got += await quiet(a, 0.5) + await quiet(b, 0.5)
    await a.close()
    await b.close()
    assert len(got) == 200
    assert len({(r.partition, r.offset) for r in got}) == 200


async def test_a_new_group_from_the_end_sees_only_later_records(bus: Bus, topic: str) -> None:
    await bus.publish(records(topic, 5))
    latest = await bus.subscribe([topic], random_name("g-"), from_beginning=False)
    await bus.publish([Outgoing(topic, b"after", key=b"k")])
    got = await drain(latest, 1)
    got += await quiet(latest, 0.5)
    await latest.close()
    assert [r.value for r in got] == [b"after"]


async def test_topics_subscribed_together_are_co_partitioned(bus: Bus) -> None:
    """The router relies on it: a tenant's events and routing commands (same key, same partition number)
    reach the same member, so one replica owns the tenant."""
    first, second = random_name("copart-a-"), random_name("copart-b-")
    await bus.ensure_topics([first, second])
    group = random_name("g-")
    a = await bus.subscribe([first, second], group)
    b = await bus.subscribe([first, second], group)
    members = (a, b)
    async with asyncio.timeout(30):  # Kafka: the first member's poll takes part in the rebalance b started
        while not all(m.assignment() for m in members) or sum(len(m.assignment()) for m in members) != 8:
            await asyncio.gather(*(m.getmany(0.1, 10) for m in members))
    for m in members:
        held = m.assignment()
        assert {p for t, p in held if t == first} == {p for t, p in held if t == second}
    assert not a.assignment() & b.assignment()
    await bus.publish([Outgoing(t, b"x", key=f"tenant-{n}".encode()) for n in range(20) for t in (first, second)])
    got = {id(m): [] for m in members}  # type: dict[int, list[Record]]
    async with asyncio.timeout(30):
        while sum(len(v) for v in got.values()) < 40:
            for m in members:
                got[id(m)] += await m.getmany(0.1, 1000)
    for m in members:
        keys = {(r.key, r.topic) for r in got[id(m)]}
        assert {k for k, t in keys if t == first} == {k for k, t in keys if t == second}
    await a.close()
    await b.close()


async def test_behind_counts_what_waits_past_the_members_position(bus: Bus, topic: str) -> None:
    """The consume loop's stall check rests on it: records published and not yet fetched, asked of the broker."""
    consumer = await bus.subscribe([topic], random_name("g-"))
    try:
        assert await consumer.behind() == 0
        await bus.publish(records(topic, 7))
        assert await consumer.behind() == 7
        got = await drain(consumer, 7)
        assert len(got) == 7
        assert await consumer.behind() == 0
    finally:
        await consumer.close()
