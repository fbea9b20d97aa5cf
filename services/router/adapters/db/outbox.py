"""The transactional outbox (the ``Outbox`` port)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from services.router.adapters.db import raw
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
        if self.dialect == "postgresql":
            like = "".join("/" + ch if ch in "/%_" else ch for ch in topic_prefix) + "%"  # the prefix, literally
            rows: Any = await raw.fetch(self.conn, _TAKE, {"like": like, "limit": limit})
        else:  # one writer: nothing to skip, and a statement that starts with WITH would not open the transaction
            o = t.outbox.c
            oldest = select(o.seq).where(o.topic.startswith(topic_prefix, autoescape=True)).order_by(o.seq)
            taken = delete(t.outbox).where(o.seq.in_(oldest.limit(limit))).returning(o.seq, o.topic, o.key, o.value)
            rows = await self.conn.execute(taken)
        # RETURNING keeps no order: the outbox's is the commits'
        return sorted((int(r[0]), Outgoing(topic=r[1], key=r[2], value=r[3])) for r in rows)


# On PostgreSQL, run by the driver itself (raw.py): every flush of every relay runs it. The rows are chosen once,
# in a materialized CTE: as an IN subquery, PostgreSQL may run the locking LIMIT query again for each row it
# meets (a nested loop), skip the rows this statement has just deleted, and take more than ``limit``. SKIP
# LOCKED leaves another relay's rows, being published, to it. They are then deleted by key: as
# ``= ANY(ARRAY(...))`` PostgreSQL looks each one up in the primary key, where a join with the chosen rows was
# planned as a scan of the whole table, which a busy outbox fills with rows deleted and not yet vacuumed.
_TAKE = (
    "WITH oldest AS MATERIALIZED (SELECT seq FROM outbox WHERE topic LIKE :like ESCAPE '/' ORDER BY seq "
    "LIMIT :limit FOR UPDATE SKIP LOCKED) "
    "DELETE FROM outbox WHERE seq = ANY(ARRAY(SELECT seq FROM oldest)) RETURNING seq, topic, key, value"
)
