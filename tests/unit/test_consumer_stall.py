"""A consumer that stops fetching while records wait (aiokafka's group coordinator can loop for ever after a
broker crash) is replaced by a new member; an idle one, with nothing waiting, is left alone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from shared import bus_kafka
from shared.bus import BusUnavailable, Outgoing, Record
from shared.bus_memory import MemoryBus, MemoryConsumer
from shared.consumer_loop import consume

TOPIC = "conversation.outbound.telegram"


class StuckConsumer(MemoryConsumer):
    """Holds its partitions and knows what waits on them, but its fetches never bring anything."""

    async def getmany(self, timeout_s: float, max_records: int) -> list[Record]:
        await asyncio.sleep(timeout_s)
        return []


class FirstMemberSpoiled(MemoryBus):
    """Counts the members that joined; ``spoil`` changes the first one."""

    def __init__(self, spoil: Callable[[MemoryConsumer], None] | None = None) -> None:
        super().__init__(partitions=2)
        self.subscribed = 0
        self.spoil = spoil

    async def subscribe(self, topics, group, *, from_beginning=True):  # type: ignore[no-untyped-def]
        self.subscribed += 1
        consumer = await super().subscribe(topics, group, from_beginning=from_beginning)
        if self.subscribed == 1 and self.spoil is not None:
            self.spoil(consumer)
        return consumer


class FirstMemberStuck(FirstMemberSpoiled):
    def __init__(self) -> None:
        super().__init__(lambda consumer: setattr(consumer, "__class__", StuckConsumer))


async def run(bus: FirstMemberStuck, publish: int, seconds: float) -> list[bytes]:
    handled: list[bytes] = []

    async def handle(records: list[Record]) -> None:
        handled.extend(r.value for r in records)

    stop = asyncio.Event()
    joined = asyncio.Event()
    task = asyncio.create_task(
        consume(
            bus, [TOPIC], "connector-telegram-outbound", handle, stop, deadletter_topic="dl", poll_s=0.05,
            stall_s=0.3, joined=joined,
        )
    )  # fmt: skip
    await joined.wait()
    await bus.publish([Outgoing(TOPIC, f"reply-{i}".encode(), f"c{i}".encode()) for i in range(publish)])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline and len(handled) < publish:
        await asyncio.sleep(0.05)
    if publish == 0:
        await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait_for(task, 5)
    return handled


async def test_a_member_that_fetches_nothing_while_records_wait_is_replaced() -> None:
    bus = FirstMemberStuck()
    handled = await run(bus, publish=5, seconds=5)
    assert sorted(handled) == sorted(f"reply-{i}".encode() for i in range(5))
    assert bus.subscribed == 2  # the stuck member left, a new one joined and got every record


async def test_an_idle_member_with_nothing_waiting_is_kept() -> None:
    bus = FirstMemberStuck()
    handled = await run(bus, publish=0, seconds=1.5)  # five stall windows with nothing on the topic
    assert handled == []
    assert bus.subscribed == 1


async def test_a_batch_whose_handler_never_returns_is_fetched_again_by_a_new_member() -> None:
    bus = FirstMemberSpoiled()
    handled: list[bytes] = []
    calls = 0

    async def handle(records: list[Record]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.Event().wait()  # waits on something that never answers (a wedged producer)
        handled.extend(r.value for r in records)

    stop, joined = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        consume(
            bus, [TOPIC], "router", handle, stop, deadletter_topic="dl", poll_s=0.05, handle_s=0.3,
            joined=joined,
        )
    )  # fmt: skip
    await joined.wait()
    await bus.publish([Outgoing(TOPIC, f"m-{i}".encode(), b"k") for i in range(3)])
    for _ in range(100):
        if len(handled) == 3:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert sorted(handled) == [b"m-0", b"m-1", b"m-2"]  # none lost, none committed by the wedged attempt
    assert bus.subscribed == 2


class _WedgedProducer:
    """A producer whose send waits for metadata that never comes (its client was stopped under it)."""

    async def send(self, *args: object, **kwargs: object) -> asyncio.Future[None]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_publish_on_a_wedged_producer_fails_in_bounded_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bus_kafka, "PUBLISH_TIMEOUT_S", 0.2)
    bus = bus_kafka.KafkaBus("127.0.0.1:1")
    bus._producer = _WedgedProducer()  # type: ignore[assignment]
    with pytest.raises(BusUnavailable):
        await asyncio.wait_for(bus.publish([Outgoing(TOPIC, b"x", b"k")]), 5)
    assert bus._broken  # the next publish starts a fresh producer


class _PositionNeverKnown:
    """An aiokafka consumer whose partition position waits on a group coordinator that never answers."""

    def assignment(self) -> set[tuple[str, int]]:
        return {(TOPIC, 0)}

    def highwater(self, tp: object) -> int:
        return 10

    async def position(self, tp: object) -> int:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_reading_the_lag_of_a_wedged_member_fails_in_bounded_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bus_kafka, "BROKER_CALL_S", 0.2)
    consumer = bus_kafka.KafkaConsumer(_PositionNeverKnown())  # type: ignore[arg-type]
    with pytest.raises(BusUnavailable):  # retriable: the consume loop joins again with a new member
        await asyncio.wait_for(consumer.lag(), 5)


async def test_a_cancelled_error_from_inside_the_kafka_client_does_not_end_the_loop() -> None:
    """aiokafka cancels its coordinator's own tasks when it closes after a broker crash, and that CancelledError
    can come out of a fetch or a stop: the loop must take it as a failed member, not as its own shutdown."""

    async def getmany(timeout_s: float, max_records: int) -> list[Record]:
        raise asyncio.CancelledError()

    async def close() -> None:
        raise asyncio.CancelledError()

    def cancelling_inside(consumer: MemoryConsumer) -> None:
        consumer.getmany = getmany  # type: ignore[method-assign]
        consumer.close = close  # type: ignore[method-assign]

    bus = FirstMemberSpoiled(cancelling_inside)
    handled: list[bytes] = []

    async def handle(records: list[Record]) -> None:
        handled.extend(r.value for r in records)

    await bus.publish([Outgoing(TOPIC, f"m-{i}".encode(), b"k") for i in range(3)])
    stop = asyncio.Event()
    task = asyncio.create_task(consume(bus, [TOPIC], "router", handle, stop, deadletter_topic="dl", poll_s=0.05))
    for _ in range(100):
        if len(handled) == 3:
            break
        await asyncio.sleep(0.05)
    assert not task.done(), "the loop ended"
    stop.set()
    await asyncio.wait_for(task, 5)
    assert sorted(handled) == [b"m-0", b"m-1", b"m-2"] and bus.subscribed == 2
    # and a real shutdown still ends it
    stop2 = asyncio.Event()
    task2 = asyncio.create_task(consume(bus, [TOPIC], "router-2", handle, stop2, deadletter_topic="dl", poll_s=0.05))
    await asyncio.sleep(0.2)
    task2.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task2
