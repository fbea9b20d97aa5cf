"""Apache Kafka bus on aiokafka.

Producer: idempotent, acks=all, small linger so concurrent publishes share a batch; one per process.
Consumers: manual commits only (enable_auto_commit=False): the caller commits after its effects are durable,
so a crash redelivers instead of losing (at-least-once; handlers dedupe by event id).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from shared.bus import BusUnavailable, Outgoing, Record

log = logging.getLogger(__name__)
PUBLISH_TIMEOUT_S = 30.0  # above the producer's own request timeout (15 s) and retries


class KafkaBus:
    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "switchboard",
        partitions: int = 12,
        topics: Sequence[str] = (),
    ) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.partitions = partitions
        self.topics = tuple(topics)
        self._producer: AIOKafkaProducer | None = None
        self._broken = False
        self._restarting = asyncio.Lock()

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id=f"{self.client_id}-producer",
            enable_idempotence=True,
            acks="all",
            linger_ms=2,
            max_batch_size=256 * 1024,
            request_timeout_ms=15_000,
        )

    async def start(self) -> None:
        if self.topics:
            await self.ensure_topics(self.topics)
        self._producer = self._new_producer()
        await self._producer.start()

    async def _renew_producer(self) -> None:
        """After a failed send, start a fresh producer (a new producer id). An idempotent producer whose broker
        restarted can be left answering OutOfOrderSequenceNumber for ever; the callers resend what failed (the
        outbox keeps it, clients retry) and consumers dedupe by event id, so a new session loses nothing."""
        async with self._restarting:
            if not self._broken:
                return
            old, self._producer = self._producer, None
            if old is not None:
                try:
                    await asyncio.wait_for(old.stop(), 5)
                except Exception as exc:  # a wedged producer may not stop cleanly; it is dropped either way
                    log.info("kafka.producer_stop_failed", extra={"error": repr(exc)[:200]})
            fresh = self._new_producer()
            try:
                await fresh.start()
            except KafkaError as exc:
                await fresh.stop()
                raise BusUnavailable(f"kafka producer restart failed: {exc!r}") from exc
            self._producer, self._broken = fresh, False
            log.warning("kafka.producer_renewed")

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        """Create missing topics with our partition count (single-node dev servers: replication 1)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, client_id=f"{self.client_id}-admin")
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            missing = [t for t in topics if t not in existing]
            if missing:
                brokers = len((await admin.describe_cluster())["brokers"])
                replication = min(3, brokers)
                try:
                    await admin.create_topics(
                        [NewTopic(t, self.partitions, replication) for t in missing], timeout_ms=30_000
                    )
                except TopicAlreadyExistsError:
                    pass  # another process won the race
        finally:
            await admin.close()

    async def publish(self, records: Sequence[Outgoing]) -> None:
        if self._broken:
            await self._renew_producer()
        producer = self._producer
        if producer is None:
            raise BusUnavailable("bus not started")
        try:
            futures = [
                await producer.send(r.topic, r.value, key=r.key, headers=list(r.headers) or None) for r in records
            ]
            # bounded: a producer stopped or renewed under a send must not leave its caller (and the database
            # transaction the outbox relay holds meanwhile) waiting for ever
            await asyncio.wait_for(asyncio.gather(*futures), PUBLISH_TIMEOUT_S)
        except (KafkaError, TimeoutError) as exc:
            if producer is self._producer:
                self._broken = True  # the next publish starts a fresh producer
            raise BusUnavailable(f"kafka publish failed: {exc!r}") from exc

    async def subscribe(self, topics: Sequence[str], group: str, *, from_beginning: bool = True) -> KafkaConsumer:
        consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=self.bootstrap,
            client_id=f"{self.client_id}-{group}",
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest" if from_beginning else "latest",
            max_poll_records=2000,
            fetch_max_wait_ms=50,
            session_timeout_ms=10_000,
            # co-partitioning: partition p of each subscribed topic goes to one member (the router reads a
            # tenant's events and its routing commands together, see shared/topics.py)
            partition_assignment_strategy=(RangePartitionAssignor,),
            heartbeat_interval_ms=1_000,
        )
        await consumer.start()
        await _await_assignment(consumer)
        return KafkaConsumer(consumer)


async def _await_assignment(consumer: AIOKafkaConsumer, timeout_s: float = 30.0) -> None:
    """Return once the group gave us partitions and their start positions are fixed: a "latest" consumer
    must not miss what is published right after subscribe() returns."""
    try:
        async with asyncio.timeout(timeout_s):
            while not consumer.assignment():
                await asyncio.sleep(0.02)
            for tp in consumer.assignment():
                await consumer.position(tp)
    except TimeoutError:
        log.warning("kafka.assignment_slow", extra={"timeout_s": timeout_s})


class KafkaConsumer:
    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer

    async def getmany(self, timeout_s: float, max_records: int) -> list[Record]:
        try:
            batches = await self._consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        except KafkaError as exc:
            raise BusUnavailable(f"kafka fetch failed: {exc!r}") from exc
        return [
            Record(m.topic, m.partition, m.offset, m.key, m.value, tuple(m.headers or ()))
            for tp in sorted(batches, key=lambda tp: (tp.topic, tp.partition))
            for m in batches[tp]
        ]

    def assignment(self) -> frozenset[tuple[str, int]]:
        return frozenset((tp.topic, tp.partition) for tp in self._consumer.assignment())

    async def lag(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for tp in self._consumer.assignment():
            high = self._consumer.highwater(tp)
            if high is None:
                continue  # nothing fetched yet from this partition
            position = await self._consumer.position(tp)
            out[tp.topic] = out.get(tp.topic, 0) + max(0, high - position)
        return out

    async def commit(self) -> None:
        try:
            await self._consumer.commit()
        except KafkaError as exc:
            # A rebalance moved partitions away: the new owner gets the records again and dedupes.
            raise BusUnavailable(f"kafka commit failed: {exc!r}") from exc

    async def close(self) -> None:
        await self._consumer.stop()
