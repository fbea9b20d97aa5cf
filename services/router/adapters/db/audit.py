"""The ``audit_log`` table (the ``Audit`` port)."""

from __future__ import annotations

from datetime import datetime

from services.router.adapters.db import tables as t
from services.router.adapters.db.bulk import insert_rows
from services.router.adapters.db.repository import SqlRepository
from services.router.handlers.ports.audit import AuditEntry


class SqlAudit(SqlRepository):
    async def record(self, entry: AuditEntry, at: datetime) -> None:
        """Cut to the columns' widths: an over-long path id is recorded in part rather than refused."""
        row = dict(
            tenant_id=entry.tenant_id,
            actor=entry.actor[:64],
            role=entry.role,
            method=entry.method,
            route=entry.route[:255],
            target={k: v[:128] for k, v in entry.target.items()},
            status=entry.status,
            at=at,
        )
        await insert_rows(self.conn, t.audit_log, [row])
