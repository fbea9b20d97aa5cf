"""Dead letters as the API lists them: newest first, one tenant's."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.adapters.db import tables as t
from services.router.adapters.db.deadletters import one

__all__ = ["one", "page"]

d = t.deadletters.c


async def page(conn: AsyncConnection, tenant_id: str, limit: int, before: datetime | None) -> list[dict[str, Any]]:
    query = select(t.deadletters).where(d.tenant_id == tenant_id)
    if before is not None:
        query = query.where(d.deadlettered_at < before)
    rows = await conn.execute(query.order_by(d.deadlettered_at.desc(), d.id).limit(limit))
    return [dict(r._mapping) for r in rows]
