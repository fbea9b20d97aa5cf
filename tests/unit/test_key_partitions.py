"""A keyed record goes to the partition Kafka's Java client would choose (murmur2 of the key, positive, modulo
the partition count): the connectors, the router and any other producer put one key on one partition, which the
co-partitioned consumers rely on. The router's partitioner remembers each key's hash; the partition must be
the same as without it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.bus_kafka import key_partition

# Kafka's own partitioner on these keys, over 1,000 partitions (the Java client's output, as kafka-python's
# compatibility test records it)
JAVA = [(b"", 681), (b"a", 524), (b"ab", 434), (b"abc", 107), (b"123456789", 566), (b"\x00 ", 742)]


@pytest.mark.parametrize(("key", "partition"), JAVA)
def test_the_java_clients_partition(key: bytes, partition: int) -> None:
    partitions = list(range(1000))
    assert key_partition(key, partitions, partitions) == partition
    assert key_partition(key, partitions, []) == partition, "again, from the remembered hash; none available"


@given(st.binary(max_size=64), st.integers(min_value=1, max_value=64))
def test_the_same_partition_as_kafkas_default_partitioner(key: bytes, count: int) -> None:
    from aiokafka.partitioner import DefaultPartitioner

    partitions = list(range(count))
    expected = DefaultPartitioner()(key, partitions, partitions)
    assert key_partition(key, partitions, partitions) == expected
    assert key_partition(key, partitions, partitions[:1]) == expected, "a key's partition, available or not"


def test_a_record_without_a_key_goes_to_an_available_partition() -> None:
    seen = {key_partition(None, [0, 1, 2, 3], [1, 3]) for _ in range(200)}
    assert seen == {1, 3}
    assert key_partition(None, [0, 1], []) in (0, 1)
