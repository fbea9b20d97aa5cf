"""The transactional outbox (the ``Outbox`` port)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select

from services.router.adapters.db import tables as t
from services.router.adapters.db.bulk import insert_rows
from services.router.adapters.db.repository import SqlRepository
from shared.bus import Outgoing


class SqlOutbox(SqlRepository):
    """Outbox rows of one transaction."""

    async def add(self, records: Sequence[Outgoing], now: datetime) -> None:
        if records:
            await insert_rows(
                self.conn, t.outbox, [dict(topic=r.topic, key=r.key, value=r.value, created_at=now) for r in records]
            )

    async def take(self, limit: int, topic_prefix: str = "") -> list[tuple[int, Outgoing]]:
        o = t.outbox.c
        oldest = (
            select(o.seq)
            .where(o.topic.startswith(topic_prefix, autoescape=True))
            .order_by(o.seq)
            .limit(limit)
            .with_for_update(skip_locked=True)  # another relay's rows, being published: not these
        )
        rows = await self.conn.execute(
            delete(t.outbox).where(o.seq.in_(oldest.scalar_subquery())).returning(o.seq, o.topic, o.key, o.value)
        )
        # RETURNING keeps no order: the outbox's is the commits'
        return sorted((int(r.seq), Outgoing(topic=r.topic, key=r.key, value=r.value)) for r in rows)
