"""The transactional outbox: what a transaction decided is published only once it committed."""

from __future__ import annotations

from services.router.handlers.ports import Store
from shared.bus import Bus


class OutboxRelay:
    """Publishes what transactions wrote to the outbox, then deletes it: nothing is published that was not
    committed, and nothing committed is left unpublished (a crash leaves rows that the next flush sends)."""

    def __init__(self, repo: Store, bus: Bus, batch: int = 1000) -> None:
        self.repo = repo
        self.bus = bus
        self.batch = batch

    async def flush(self) -> int:
        sent = 0
        while True:
            async with self.repo.unit() as u:
                claimed = await u.outbox.claim(self.batch)
                if not claimed:
                    return sent
                await self.bus.publish([o for _, o in claimed])
                await u.outbox.delete([seq for seq, _ in claimed])
            sent += len(claimed)
