"""The bus interface: publish records durably, consume them in a group and commit after the work is durable.

Two implementations pass the same contract suite (tests/integration/test_bus_contract.py): ``MemoryBus`` for the
embedded desk and unit tests, ``KafkaBus`` (aiokafka) in production.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from shared.metrics import DEADLETTERED

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    value: bytes
    key: bytes | None = None
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers = field(default=())

    def header(self, name: str) -> bytes | None:
        return next((v for k, v in self.headers if k == name), None)


class BusUnavailable(RuntimeError):
    """The broker could not be reached or did not acknowledge: retriable, do not commit."""

    retriable = True


class Consumer(Protocol):
    async def getmany(self, timeout_s: float, max_records: int) -> list[Record]:
        """Next records of this member's partitions, in offset order per partition; [] on timeout."""

    async def commit(self, records: Sequence[Record] | None = None) -> None:
        """Mark records done; after a crash the group resumes after them. ``records``: those of a batch (each of
        their partitions up to its last record given), whatever was fetched since; None: every record returned
        so far."""

    def assignment(self) -> frozenset[tuple[str, int]]:
        """The (topic, partition) pairs the group gives this member now. Topics subscribed together with the
        same partition count are co-partitioned: partition p of each goes to the same member."""

    async def lag(self) -> dict[str, int]:
        """Records not yet fetched on this member's partitions, per topic (for the consumer-lag metric)."""

    async def behind(self) -> int:
        """Records past this member's position on its partitions, asked of the broker now (``lag`` may rest on
        the last fetch). The consume loop's stall check: records waiting while fetches bring none."""

    async def close(self) -> None: ...


class Bus(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        """Create topics that do not exist yet."""

    async def publish(self, records: Sequence[Outgoing]) -> None:
        """Return only once every record is durably stored (Kafka: acks=all); raise BusUnavailable if not."""

    async def subscribe(self, topics: Sequence[str], group: str, *, from_beginning: bool = True) -> Consumer:
        """Join ``group``; a group with no committed offset starts at the beginning (or the end)."""


def done_positions(records: Sequence[Record]) -> dict[tuple[str, int], int]:
    """Where a group resumes once ``records`` are done: each of their (topic, partition) after its last one."""
    out: dict[tuple[str, int], int] = {}
    for r in records:
        key = (r.topic, r.partition)
        if r.offset >= out.get(key, 0):
            out[key] = r.offset + 1
    return out


def partition_for(key: bytes | None, partitions: int, fallback: int) -> int:
    """Stable key → partition (CRC32) so one key's records stay in order; no key: caller's round robin."""
    if key is None:
        return fallback % partitions
    return zlib.crc32(key) % partitions


def deadletter(record: Record, reason: str, topic: str, *, kind: str = "invalid") -> Outgoing:
    """The original bytes untouched, with why and where they came from in headers. ``kind`` is the bounded
    label of ``switchboard_deadlettered_total`` (``invalid``: refused by a schema; else the error's class)."""
    DEADLETTERED.labels(topic=".".join(record.topic.split(".")[-2:]), kind=kind).inc()  # without any prefix
    return Outgoing(
        topic=topic,
        key=record.key,
        value=record.value,
        headers=(
            ("reason", reason.encode()[:1000]),
            ("source-topic", record.topic.encode()),
            ("source-partition", str(record.partition).encode()),
            ("source-offset", str(record.offset).encode()),
            ("kind", kind.encode()[:100]),
        ),
    )
