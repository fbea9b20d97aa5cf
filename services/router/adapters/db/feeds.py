"""Agents' feeds (the ``Feeds`` port)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.adapters.db import tables as t


class SqlFeeds:
    """Appends to agents' feeds."""

    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect

    async def add(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Append to agents' feeds; returns the rows with their feed sequence numbers, in order."""
        if not rows:
            return []
        e = t.agent_events.c
        result = await self.conn.execute(
            insert(t.agent_events).returning(e.seq, e.id, sort_by_parameter_order=True), list(rows)
        )
        seqs = {r.id: r.seq for r in result}
        return [{**row, "seq": seqs[row["id"]]} for row in rows]
