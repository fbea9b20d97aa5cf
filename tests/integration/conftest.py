"""Fixtures shared by the integration suites."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.bus import Bus
from shared.bus_kafka import KafkaBus
from shared.bus_memory import MemoryBus
from tests.conftest import random_name


@pytest.fixture(params=["memory", "kafka"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    b: Bus
    if request.param == "memory":
        b = MemoryBus(partitions=4)
    else:
        servers = request.getfixturevalue("servers")
        b = KafkaBus(servers.kafka_bootstrap, partitions=4, client_id=random_name("c-"))
    await b.start()
    try:
        yield b
    finally:
        await b.close()
