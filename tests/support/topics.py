"""The topics a test module created on the shared Kafka broker, deleted when the module is done.

Every production-shape test takes a fresh topic prefix, so a full run leaves thousands of partitions on one
broker. Each of them costs the broker at every metadata request and group join, and all of them are checked
again when the fault suite kills and restarts it (minutes, not seconds). The tests never share topics across
modules, so a module's new topics can go when it ends."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient

T = TypeVar("T")
CHUNK = 200  # topics per delete request


def in_own_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a fresh event loop in its own thread: the caller may be inside pytest-asyncio's loop."""
    with ThreadPoolExecutor(1, thread_name_prefix="test-topics") as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _admin(bootstrap: str) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    await admin.start()
    return admin


def topic_names(bootstrap: str) -> set[str]:
    async def listed() -> set[str]:
        admin = await _admin(bootstrap)
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()

    return in_own_loop(listed())


def delete_new_topics(bootstrap: str, kept: set[str], only: re.Pattern[str] | None = None) -> int:
    """Delete every topic not in ``kept``, not internal to Kafka (``__`` names) and, given ``only``, with a
    name it finds; how many were deleted. Tests run by several pytest-xdist workers share the broker: a
    worker's names carry its tag (``tests.conftest.random_name``), and another worker's topics are in use."""

    async def deleted() -> int:
        admin = await _admin(bootstrap)
        try:
            names = sorted(
                t
                for t in await admin.list_topics()
                if t not in kept and not t.startswith("__") and (only is None or only.search(t))
            )
            for i in range(0, len(names), CHUNK):
                await admin.delete_topics(names[i : i + CHUNK], timeout_ms=30_000)
            return len(names)
        finally:
            await admin.close()

    return in_own_loop(deleted())
