"""The transactional outbox: what a transaction decided is published only once it committed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from services.router.handlers.ports import Clock, Store
from shared.bus import Bus

# Set while a batch of transactions runs (``OutboxRelay.deferred``): their flushes wait for the batch's end. A
# context variable, so a lane of the consume loop (a task of its own) defers only its own flushes.
_deferring: ContextVar[bool] = ContextVar("outbox_deferring", default=False)


class OutboxRelay:
    """Publishes what transactions wrote to the outbox, then deletes it: nothing is published that was not
    committed, and nothing committed is left unpublished (a crash leaves rows that the next flush sends)."""

    def __init__(self, repo: Store, bus: Bus, batch: int = 1000, topic_prefix: str = "") -> None:
        self.repo = repo
        self.bus = bus
        self.batch = batch
        self.topic_prefix = topic_prefix  # this deployment's topics (SWITCHBOARD_TOPIC_PREFIX): its rows only
        self.kicked = asyncio.Event()  # the relay's loop (entrypoints/timers.py) flushes at once when set
        self._flushing = 0

    @asynccontextmanager
    async def deferred(self, *, wait: bool = True) -> AsyncIterator[None]:
        """Within the block, ``flush`` does nothing; one flush at its end sends what the block's transactions
        committed (one claim and delete for a batch of commands, not one per command). A failure in the block
        still flushes what was committed before it. ``wait=False``: that flush is the relay loop's (``kick``),
        and the block's end does not wait for the publication (the consume loop goes on to its next batch
        while the last one's feed is published)."""
        token = _deferring.set(True)
        try:
            yield
        finally:
            _deferring.reset(token)
            if wait:
                await self.flush()
            else:
                self.kick()

    def kick(self) -> None:
        """What committed is published soon by the relay's loop, not by the caller. Within a deferred block the
        block's end publishes (or kicks) instead."""
        if not _deferring.get():
            self.kicked.set()

    async def settled(self) -> None:
        """Until nothing kicked waits for the relay's loop and no flush runs in this process."""
        while self.kicked.is_set() or self._flushing:
            await asyncio.sleep(0.005)

    async def flush(self) -> int:
        if _deferring.get():
            return 0
        self._flushing += 1
        try:
            return await self._flush()
        finally:
            self._flushing -= 1

    async def _flush(self) -> int:
        sent = 0
        while True:
            async with self.repo.unit() as u:  # taken and published in one transaction: a failed publish puts back
                taken = await u.outbox.take(self.batch, self.topic_prefix)
                if not taken:
                    return sent
                await self.bus.publish([o for _, o in taken])
            sent += len(taken)
            if len(taken) < self.batch:  # the outbox was drained: no need to ask again
                return sent


@dataclass(eq=False)
class OutboxWriter:
    """What every handler that saves a transaction and then publishes what it wrote to the outbox holds: the
    store, the relay that publishes after the commit, and the clock its times come from."""

    repo: Store
    relay: OutboxRelay
    clock: Clock
