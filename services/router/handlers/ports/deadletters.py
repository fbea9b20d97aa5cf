"""Dead letters as people read them, per tenant (``handlers/deadletters.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    tenant_id: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    reason: str
    kind: str
    dl_topic: str
    dl_partition: int
    dl_offset: int


class DeadLetters(Protocol):
    async def add(self, rows: Sequence[DeadLetter], now: datetime) -> int:
        """Store those not stored yet; returns how many were new."""
        ...

    async def one(self, tenant_id: str, deadletter_id: str) -> dict[str, Any] | None: ...

    async def mark_redriven(self, tenant_id: str, deadletter_id: str, now: datetime) -> None: ...

    async def forget_before(self, cutoff: datetime) -> int: ...
