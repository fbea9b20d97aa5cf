"""The audit log as the API pages it: one tenant's, newest first."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.adapters.db import tables as t

a = t.audit_log.c


async def page(conn: AsyncConnection, tenant_id: str, limit: int, before: int | None) -> list[dict[str, Any]]:
    """Up to ``limit`` entries with ``seq`` below ``before`` (all when None)."""
    query = select(a.seq, a.actor, a.role, a.method, a.route, a.target, a.status, a.at).where(a.tenant_id == tenant_id)
    if before is not None:
        query = query.where(a.seq < before)
    rows = await conn.execute(query.order_by(a.seq.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]
