"""Agents' feeds (the ``Feeds`` port)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert

from services.router.adapters.db import tables as t
from services.router.adapters.db.repository import SqlRepository


class SqlFeeds(SqlRepository):
    """Appends to agents' feeds."""

    async def add(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        if not rows:
            return []
        e = t.agent_events.c
        result = await self.conn.execute(
            insert(t.agent_events).returning(e.seq, e.id, sort_by_parameter_order=True), list(rows)
        )
        seqs = {r.id: r.seq for r in result}
        return [{**row, "seq": seqs[row["id"]]} for row in rows]
