"""The transactional outbox (the ``Outbox`` port)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import any_, delete, func, select

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
        oldest = select(o.seq).where(o.topic.startswith(topic_prefix, autoescape=True)).order_by(o.seq).limit(limit)
        if self.dialect == "postgresql":
            # Chosen once, in a materialized CTE: as an IN subquery, PostgreSQL may run the locking LIMIT query again
            # for each row it meets (a nested loop), skip the rows this statement has just deleted, and take more
            # than ``limit``. SQLite has one writer: nothing to skip, and a statement that starts with WITH would
            # not open the driver's transaction (it would commit at once).
            chosen = (
                oldest.with_for_update(skip_locked=True)  # another relay's rows, being published: not these
                .cte("oldest")
                .prefix_with("MATERIALIZED")
            )
            # then deleted by key: as ``= ANY(ARRAY(...))`` PostgreSQL looks each one up in the primary key. A join
            # with the chosen rows was planned as a scan of the whole table, which a busy outbox fills with rows
            # deleted and not yet vacuumed: every take read them all again.
            taken = o.seq == any_(func.array(select(chosen.c.seq).scalar_subquery()))
        else:
            taken = o.seq.in_(oldest)
        rows = await self.conn.execute(delete(t.outbox).where(taken).returning(o.seq, o.topic, o.key, o.value))
        # RETURNING keeps no order: the outbox's is the commits'
        return sorted((int(r.seq), Outgoing(topic=r.topic, key=r.key, value=r.value)) for r in rows)
