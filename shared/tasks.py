"""Stopping background loops gracefully: signal, let them finish what they hold, then cancel stragglers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence


async def drain(tasks: Sequence[asyncio.Task[None]], stop: asyncio.Event, timeout_s: float = 30.0) -> None:
    """Set ``stop`` (loops check it between batches), wait up to ``timeout_s`` for them to finish and commit,
    and cancel whatever is still running after that."""
    stop.set()
    if tasks:
        await asyncio.wait(tasks, timeout=timeout_s)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
