"""In-process bus with Kafka's semantics that matter to us: partitions keyed by hash, consumer groups that
split partitions between members, committed offsets per group, redelivery of what was not committed."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.bus import Outgoing, Record, done_positions, partition_for

TopicPartition = tuple[str, int]


@dataclass
class _Group:
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    members: list[MemoryConsumer] = field(default_factory=list)


class MemoryBus:
    def __init__(self, partitions: int = 4) -> None:
        self.partitions = partitions
        self._logs: dict[str, list[list[Record]]] = {}
        self._groups: dict[str, _Group] = {}
        self._round_robin = itertools.count()
        self._changed: asyncio.Condition | None = None

    @property
    def changed(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for group in self._groups.values():
            group.members.clear()

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        for topic in topics:
            self.log(topic)

    def log(self, topic: str) -> list[list[Record]]:
        if topic not in self._logs:
            self._logs[topic] = [[] for _ in range(self.partitions)]
        return self._logs[topic]

    def records(self, topic: str) -> list[Record]:
        """Everything ever published to ``topic`` (tests and the dev console read it)."""
        return [r for part in self.log(topic) for r in part]

    async def publish(self, records: Sequence[Outgoing]) -> None:
        for out in records:
            parts = self.log(out.topic)
            p = partition_for(out.key, self.partitions, next(self._round_robin))
            parts[p].append(Record(out.topic, p, len(parts[p]), out.key, out.value, out.headers))
        async with self.changed:
            self.changed.notify_all()

    async def subscribe(self, topics: Sequence[str], group: str, *, from_beginning: bool = True) -> MemoryConsumer:
        consumer = MemoryConsumer(self, tuple(topics), group, from_beginning)
        state = self._groups.setdefault(group, _Group())
        state.members.append(consumer)
        self._rebalance(state)
        return consumer

    def _leave(self, consumer: MemoryConsumer) -> None:
        state = self._groups[consumer.group]
        if consumer in state.members:
            state.members.remove(consumer)
            self._rebalance(state)

    def _rebalance(self, state: _Group) -> None:
        """Partition p of every topic goes to the same member (co-partitioned, like Kafka's range assignor
        over topics of equal size); positions restart from committed offsets, so whatever a leaving member had
        not committed is delivered again to its successor."""
        for member in state.members:
            member.assigned = {}
        if not state.members:
            return
        topics = sorted({t for m in state.members for t in m.topics})
        slots = [(t, p) for t in topics for p in range(self.partitions)]
        for tp in slots:
            candidates = [m for m in state.members if tp[0] in m.topics]
            if not candidates:
                continue
            member = candidates[tp[1] % len(candidates)]
            start = state.committed.get(tp)
            if start is None:
                start = 0 if member.from_beginning else len(self.log(tp[0])[tp[1]])
                state.committed[tp] = start
            member.assigned[tp] = start


class MemoryConsumer:
    def __init__(self, bus: MemoryBus, topics: tuple[str, ...], group: str, from_beginning: bool) -> None:
        self.bus = bus
        self.topics = topics
        self.group = group
        self.from_beginning = from_beginning
        self.assigned: dict[TopicPartition, int] = {}
        self.closed = False

    def _take(self, max_records: int) -> list[Record]:
        out: list[Record] = []
        for (topic, p), position in self.assigned.items():
            part = self.bus.log(topic)[p]
            if position < len(part):
                batch = part[position : position + max_records - len(out)]
                out.extend(batch)
                self.assigned[(topic, p)] = position + len(batch)
            if len(out) >= max_records:
                break
        return out

    async def getmany(self, timeout_s: float, max_records: int) -> list[Record]:
        if self.closed:
            raise RuntimeError("consumer is closed")
        records = self._take(max_records)
        if records:
            return records
        try:
            async with asyncio.timeout(timeout_s), self.bus.changed:
                while not (records := self._take(max_records)) and not self.closed:
                    await self.bus.changed.wait()
        except TimeoutError:
            pass
        return records

    def assignment(self) -> frozenset[tuple[str, int]]:
        return frozenset(self.assigned)

    async def lag(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (topic, p), position in self.assigned.items():
            out[topic] = out.get(topic, 0) + max(0, len(self.bus.log(topic)[p]) - position)
        return out

    async def behind(self) -> int:
        return sum((await self.lag()).values())

    async def commit(self, records: Sequence[Record] | None = None) -> None:
        state = self.bus._groups[self.group]
        positions = self.assigned if records is None else done_positions(records)
        for tp, position in positions.items():
            if tp in self.assigned:
                state.committed[tp] = position

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.bus._leave(self)
