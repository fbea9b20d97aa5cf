"""A consumer that stops fetching while records wait (aiokafka's group coordinator can loop for ever after a
broker crash) is replaced by a new member; an idle one, with nothing waiting, is left alone."""

from __future__ import annotations

import asyncio

from shared.bus import Outgoing, Record
from shared.bus_memory import MemoryBus, MemoryConsumer
from shared.consumer_loop import consume

TOPIC = "conversation.outbound.telegram"


class StuckConsumer(MemoryConsumer):
    """Holds its partitions and knows what waits on them, but its fetches never bring anything."""

    async def getmany(self, timeout_s: float, max_records: int) -> list[Record]:
        await asyncio.sleep(timeout_s)
        return []


class FirstMemberStuck(MemoryBus):
    def __init__(self) -> None:
        super().__init__(partitions=2)
        self.subscribed = 0

    async def subscribe(self, topics, group, *, from_beginning=True):  # type: ignore[no-untyped-def]
        self.subscribed += 1
        consumer = await super().subscribe(topics, group, from_beginning=from_beginning)
        if self.subscribed == 1:
            consumer.__class__ = StuckConsumer
        return consumer


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
