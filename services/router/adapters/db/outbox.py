"""The transactional outbox (the ``Outbox`` port)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select

from services.router.adapters.db import tables as t
from services.router.adapters.db.bulk import insert_rows
from services.router.adapters.db.repository import SqlRepository
from services.router.adapters.db.statements import one_of
from shared.bus import Outgoing


class SqlOutbox(SqlRepository):
    """Outbox rows of one transaction."""

    async def add(self, records: Sequence[Outgoing], now: datetime) -> None:
        if records:
            await insert_rows(
                self.conn, t.outbox, [dict(topic=r.topic, key=r.key, value=r.value, created_at=now) for r in records]
            )

    async def claim(self, limit: int, topic_prefix: str = "") -> list[tuple[int, Outgoing]]:
        o = t.outbox.c
        mine = o.topic.startswith(topic_prefix, autoescape=True)
        rows = await self.conn.execute(
            select(o.seq, o.topic, o.key, o.value)
            .where(mine)
            .order_by(o.seq)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [(r.seq, Outgoing(topic=r.topic, key=r.key, value=r.value)) for r in rows]

    async def delete(self, seqs: Sequence[int]) -> None:
        if seqs:
            await self.conn.execute(delete(t.outbox).where(one_of(self.conn, t.outbox.c.seq, seqs)))
