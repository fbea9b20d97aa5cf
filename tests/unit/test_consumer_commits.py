"""The consume loop commits a batch's offsets while it fetches and handles the next: the broker's answer does
not hold the partitions' next records back. What a commit marks done is its batch and nothing fetched after it;
a commit that fails is the member's failure, and what it did not commit is delivered again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from shared.bus import BusUnavailable, Outgoing, Record
from shared.bus_memory import MemoryBus, MemoryConsumer
from shared.consumer_loop import consume

TOPIC = "conversation.events"
GROUP = "router"


class SlowCommits(MemoryConsumer):
    """Its commits wait until the test lets them through, and are recorded."""

    bus: CommitWatch

    async def commit(self, records: Sequence[Record] | None = None) -> None:
        self.bus.commits.append([] if records is None else [r.offset for r in records])
        await self.bus.release.wait()
        if self.bus.fail_first and len(self.bus.commits) == 1:
            raise BusUnavailable("commit failed: the group rebalanced")
        await super().commit(records)


class CommitWatch(MemoryBus):
    def __init__(self, fail_first: bool = False) -> None:
        super().__init__(partitions=1)
        self.release = asyncio.Event()
        self.commits: list[list[int]] = []
        self.fail_first = fail_first
        self.subscribed = 0

    async def subscribe(self, topics, group, *, from_beginning=True):  # type: ignore[no-untyped-def]
        self.subscribed += 1
        consumer = await super().subscribe(topics, group, from_beginning=from_beginning)
        consumer.__class__ = SlowCommits
        return consumer


async def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.01)


async def start(bus: CommitWatch, handled: list[list[int]]) -> tuple[asyncio.Event, asyncio.Task[None]]:
    async def handle(records: list[Record]) -> None:
        handled.append([r.offset for r in records])

    stop, joined = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        consume(bus, [TOPIC], GROUP, handle, stop, deadletter_topic="dl", max_records=4, poll_s=0.05, joined=joined)
    )
    await joined.wait()
    return stop, task


async def test_the_next_batch_is_handled_while_the_last_ones_commit_is_in_flight() -> None:
    bus = CommitWatch()
    handled: list[list[int]] = []
    stop, task = await start(bus, handled)
    await bus.publish([Outgoing(TOPIC, f"m{i}".encode(), b"tenant") for i in range(10)])
    await wait_for(lambda: len(handled) == 2)
    await asyncio.sleep(0.2)
    assert handled == [[0, 1, 2, 3], [4, 5, 6, 7]], "the second batch did not wait for the first one's commit"
    assert bus.commits == [[0, 1, 2, 3]], "one commit at a time, of its own batch only"
    bus.release.set()
    await wait_for(lambda: len(handled) == 3)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert bus.commits == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]], "every batch committed, the last before leaving"
    assert bus._groups[GROUP].committed == {(TOPIC, 0): 10}


async def test_a_failed_commit_replaces_the_member_and_its_batch_comes_again() -> None:
    bus = CommitWatch(fail_first=True)
    bus.release.set()
    handled: list[list[int]] = []
    stop, task = await start(bus, handled)
    await bus.publish([Outgoing(TOPIC, f"m{i}".encode(), b"tenant") for i in range(6)])
    await wait_for(lambda: sum(len(h) for h in handled) >= 10)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert bus.subscribed == 2
    assert handled == [[0, 1, 2, 3], [4, 5], [0, 1, 2, 3], [4, 5]], handled
    assert bus._groups[GROUP].committed == {(TOPIC, 0): 6}
