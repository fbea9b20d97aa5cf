"""Agents' feeds (the ``Feeds`` port)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.router.adapters.db import tables as t
from services.router.adapters.db.bulk import insert_numbered
from services.router.adapters.db.repository import SqlRepository


class SqlFeeds(SqlRepository):
    """Appends to agents' feeds."""

    async def add(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return await insert_numbered(self.conn, t.agent_events, rows)  # one statement for the batch
