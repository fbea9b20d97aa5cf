"""Apache Kafka bus on aiokafka.

Producer: idempotent, acks=all, small linger so concurrent publishes share a batch; one per process.
Consumers: manual commits only (enable_auto_commit=False): the caller commits after its effects are durable,
so a crash redelivers instead of losing (at-least-once; handlers dedupe by event id).
Every client (producer, consumers, admin) connects with the same ``KafkaSecurity``: TLS and SASL from settings.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.abc import AbstractTokenProvider
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from aiokafka.partitioner import murmur2
from aiokafka.structs import TopicPartition

from shared.bus import BusUnavailable, Outgoing, Record, done_positions
from shared.cancellation import cancelled_from_outside
from shared.settings import Settings

log = logging.getLogger(__name__)
PUBLISH_TIMEOUT_S = 30.0  # above the producer's own request timeout (15 s) and retries
BROKER_CALL_S = 30.0  # a consumer's commit, offsets query or stop: longer means the broker is not answering


@lru_cache(maxsize=16_384)
def _key_hash(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF


def key_partition(key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
    """The partition of a record: Kafka's default, as its Java client and aiokafka choose it (murmur2 of the key,
    positive, modulo the partition count; a record without a key to any available one), so every producer puts
    one key on one partition. Each key's hash is remembered: aiokafka's murmur2 is pure Python, and at
    saturation hashing the keys of the router's records (a feed event's is its agent's id, one of a few hundred)
    was about 2 % of its CPU."""
    if key is None:
        return random.choice(list(available or all_partitions))
    return all_partitions[_key_hash(key) % len(all_partitions)]


@dataclass(frozen=True)
class KafkaSecurity:
    """How every client of a bus authenticates and encrypts (the SWITCHBOARD_KAFKA_SECURITY_PROTOCOL, _SASL_*
    and _SSL_* settings, validated there). The default is Kafka's PLAINTEXT."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = None
    oauth_token_url: str | None = None
    oauth_scope: str | None = None
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    check_hostname: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaSecurity:
        password = settings.kafka_sasl_password
        return cls(
            protocol=settings.kafka_security_protocol,
            sasl_mechanism=settings.kafka_sasl_mechanism,
            username=settings.kafka_sasl_username,
            password=password.get_secret_value() if password else None,
            oauth_token_url=settings.kafka_sasl_oauth_token_url,
            oauth_scope=settings.kafka_sasl_oauth_scope,
            cafile=settings.kafka_ssl_cafile,
            certfile=settings.kafka_ssl_certfile,
            keyfile=settings.kafka_ssl_keyfile,
            check_hostname=settings.kafka_ssl_check_hostname,
        )

    def ssl_context(self) -> ssl.SSLContext | None:
        """TLS that verifies the broker's chain (CERT_REQUIRED) against ``cafile`` or the system's CAs."""
        if not self.protocol.endswith("SSL"):
            return None
        context: ssl.SSLContext = create_ssl_context(cafile=self.cafile, certfile=self.certfile, keyfile=self.keyfile)
        context.check_hostname = self.check_hostname
        return context

    def client_args(self) -> dict[str, Any]:
        """Keyword arguments of AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient."""
        args: dict[str, Any] = {"security_protocol": self.protocol, "ssl_context": self.ssl_context()}
        if self.sasl_mechanism == "OAUTHBEARER":
            assert self.oauth_token_url and self.username and self.password  # Settings validated them
            provider = ClientCredentials(self.oauth_token_url, self.username, self.password, self.oauth_scope)
            args.update(sasl_mechanism="OAUTHBEARER", sasl_oauth_token_provider=provider)
        elif self.sasl_mechanism:
            args.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.username,
                sasl_plain_password=self.password,
            )
        return args


class ClientCredentials(AbstractTokenProvider):  # type: ignore[misc]
    """SASL/OAUTHBEARER tokens from an OAuth 2.0 token endpoint by the client-credentials grant (RFC 6749
    §4.4), reused until a minute before they expire."""

    def __init__(self, token_url: str, client_id: str, client_secret: str, scope: str | None = None) -> None:
        self.token_url, self.client_id, self.client_secret, self.scope = token_url, client_id, client_secret, scope
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        async with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at:
                form = {"grant_type": "client_credentials"} | ({"scope": self.scope} if self.scope else {})
                async with httpx.AsyncClient(timeout=10) as http:
                    r = await http.post(self.token_url, data=form, auth=(self.client_id, self.client_secret))
                r.raise_for_status()
                body = r.json()
                self._token = str(body["access_token"])
                self._expires_at = time.monotonic() + max(0.0, float(body.get("expires_in", 300)) - 60)
            return self._token


class KafkaBus:
    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "switchboard",
        partitions: int = 12,
        topics: Sequence[str] = (),
        security: KafkaSecurity | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.partitions = partitions
        self.topics = tuple(topics)
        self.security = security or KafkaSecurity()
        # one TLS context and token provider for all of this process's clients (files read once, at start-up)
        self._client_args = self.security.client_args()
        self._producer: AIOKafkaProducer | None = None
        self._broken = False
        self._restarting = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, client_id: str | None = None, topics: Sequence[str] = ()) -> KafkaBus:
        """The bus a service process uses: SWITCHBOARD_KAFKA_BOOTSTRAP with the settings' security."""
        if not settings.kafka_bootstrap:
            raise ValueError("SWITCHBOARD_KAFKA_BOOTSTRAP is not set")
        return cls(
            settings.kafka_bootstrap,
            client_id=client_id or settings.kafka_client_id,
            partitions=settings.kafka_partitions,
            topics=topics,
            security=KafkaSecurity.from_settings(settings),
        )

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id=f"{self.client_id}-producer",
            enable_idempotence=True,
            acks="all",
            linger_ms=2,
            max_batch_size=256 * 1024,
            request_timeout_ms=15_000,
            partitioner=key_partition,
            **self._client_args,
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
                await asyncio.wait_for(fresh.start(), PUBLISH_TIMEOUT_S)
            except (KafkaError, TimeoutError) as exc:
                await asyncio.wait_for(fresh.stop(), 5)
                raise BusUnavailable(f"kafka producer restart failed: {exc!r}") from exc
            self._producer, self._broken = fresh, False
            log.warning("kafka.producer_renewed")

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        """Create missing topics with our partition count (single-node dev servers: replication 1)."""
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap, client_id=f"{self.client_id}-admin", **self._client_args
        )
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
            # bounded, the sends included (a send waits for the topic's metadata): a producer stopped or renewed
            # under a send must not leave its caller (a consumer's batch, the database transaction the outbox
            # relay holds) waiting for ever
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                futures = [
                    await producer.send(r.topic, r.value, key=r.key, headers=list(r.headers) or None) for r in records
                ]
                if len(futures) == 1:  # one record (an API request's event): no gathering future around it
                    await futures[0]
                else:
                    await asyncio.gather(*futures)
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
            **self._client_args,
        )
        try:
            async with asyncio.timeout(BROKER_CALL_S):  # joining waits on a coordinator that may not answer
                await consumer.start()
        except TimeoutError as exc:
            await KafkaConsumer(consumer).close()
            raise BusUnavailable("kafka consumer start timed out") from exc
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
        try:
            # bounded: after a broker crash a partition's position can wait for ever on a group coordinator that
            # never comes back to this member (its consume loop then re-joins with a new one)
            async with asyncio.timeout(BROKER_CALL_S):
                for tp in self._consumer.assignment():
                    high = self._consumer.highwater(tp)
                    if high is None:
                        continue  # nothing fetched yet from this partition
                    position = await self._consumer.position(tp)
                    out[tp.topic] = out.get(tp.topic, 0) + max(0, high - position)
        except (KafkaError, TimeoutError) as exc:
            raise BusUnavailable(f"kafka positions unavailable: {exc!r}") from exc
        return out

    async def behind(self) -> int:
        assigned = list(self._consumer.assignment())
        if not assigned:
            return 0
        try:
            async with asyncio.timeout(BROKER_CALL_S):
                ends = await self._consumer.end_offsets(assigned)  # a ListOffsets request to each leader
                positions = [await self._consumer.position(tp) for tp in assigned]
        except (KafkaError, TimeoutError) as exc:
            raise BusUnavailable(f"kafka offsets unavailable: {exc!r}") from exc
        return sum(max(0, ends[tp] - position) for tp, position in zip(assigned, positions, strict=True))

    async def commit(self, records: Sequence[Record] | None = None) -> None:
        # the offsets are taken now, not when aiokafka's commit gets to run: records fetched meanwhile are not
        offsets = (
            None
            if records is None
            else {TopicPartition(topic, p): position for (topic, p), position in done_positions(records).items()}
        )
        try:
            # bounded: aiokafka retries a commit for as long as the group coordinator is unknown or loading
            async with asyncio.timeout(BROKER_CALL_S):
                await self._consumer.commit(offsets)
        except TimeoutError as exc:
            raise BusUnavailable("kafka commit timed out") from exc
        except KafkaError as exc:
            # A rebalance moved partitions away: the new owner gets the records again and dedupes.
            raise BusUnavailable(f"kafka commit failed: {exc!r}") from exc

    async def close(self) -> None:
        try:
            # bounded: leaving the group waits on a coordinator that may be gone; the broker then drops this
            # member when its session times out
            async with asyncio.timeout(BROKER_CALL_S):
                await self._consumer.stop()
        except TimeoutError:
            # its connections closed, this member can hold no partition: the broker drops it when its session
            # times out, and a new member gets its partitions
            log.warning("kafka.consumer_stop_timed_out")
            await self._consumer._client.close()
        except asyncio.CancelledError:
            # aiokafka's coordinator can end its own pending commit-offsets task by cancelling it, and that
            # CancelledError comes out of stop(): only a cancellation of this task is one
            if cancelled_from_outside():
                raise
            log.warning("kafka.consumer_stop_cancelled")
            await self._consumer._client.close()
