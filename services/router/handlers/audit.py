"""The audit trail: every authenticated API call but message ingestion (``entrypoints/http/audit_trail.py``
gathers what each call was), stored in its own transaction with the time it was recorded."""

from __future__ import annotations

from services.router.handlers.ports import Clock, Store
from services.router.handlers.ports.audit import AuditEntry


class AuditLog:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def record(self, entry: AuditEntry) -> None:
        async with self.store.unit() as u:
            await u.audit.record(entry, self.clock())
