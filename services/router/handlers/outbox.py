"""The transactional outbox: what a transaction decided is published only once it committed."""

from __future__ import annotations

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

    @asynccontextmanager
    async def deferred(self) -> AsyncIterator[None]:
        """Within the block, ``flush`` does nothing; one flush at its end sends what the block's transactions
        committed (one claim and delete for a batch of commands, not one per command). A failure in the block
        still flushes what was committed before it."""
        token = _deferring.set(True)
        try:
            yield
        finally:
            _deferring.reset(token)
            await self.flush()

    async def flush(self) -> int:
        if _deferring.get():
            return 0
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
