"""Reading a topic in tests: a consumer of a group of its own, closed afterwards, polled until enough came."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from shared.bus import Bus, Consumer, Record
from tests.conftest import random_name


@asynccontextmanager
async def reading(bus: Bus, topic: str, group: str | None = None) -> AsyncIterator[Consumer]:
    """A consumer of ``topic`` from its beginning, in ``group`` (by default a new one)."""
    consumer = await bus.subscribe([topic], group or random_name("reader-"))
    try:
        yield consumer
    finally:
        await consumer.close()


async def drain(consumer: Consumer, want: int, timeout_s: float = 20.0, max_records: int = 1000) -> list[Record]:
    """Poll until at least ``want`` records came (``TimeoutError`` after ``timeout_s``)."""
    got: list[Record] = []
    async with asyncio.timeout(timeout_s):
        while len(got) < want:
            got.extend(await consumer.getmany(0.2, max_records))
    return got
