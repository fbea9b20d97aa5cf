"""The transactional outbox: records published once their transaction committed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from shared.bus import Outgoing


class Outbox(Protocol):
    async def add(self, records: Sequence[Outgoing], now: datetime) -> None: ...

    async def take(self, limit: int, topic_prefix: str = "") -> list[tuple[int, Outgoing]]:
        """The oldest unpublished rows (up to ``limit``, by seq) for topics under ``topic_prefix`` (the
        deployment's: a database shared by two deployments never has one publish the other's), deleted in the
        caller's transaction, which publishes them before it commits: gone once it commits, back if it rolls
        back. Rows another relay holds are skipped, so two relays never publish the same row at once."""
        ...
