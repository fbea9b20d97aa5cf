"""Fixtures shared by the integration suites."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.router.adapters.db.migrate import upgrade
from services.router.adapters.db.unit_of_work import SqlStore
from shared.bus import Bus
from shared.bus_kafka import KafkaBus
from shared.bus_memory import MemoryBus
from shared.store import Database
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


@pytest.fixture(params=["sqlite", "postgresql"])
async def repo(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    """The store on both databases, migrated: one contract, two implementations."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/store.db"
    else:
        url = request.getfixturevalue("servers").database_url
    db = Database(url)
    await upgrade(db)
    try:
        yield SqlStore(db)
    finally:
        await db.close()
