"""The ``deadletters`` table (the ``DeadLetters`` port): the dead-letter topic as people read it, per tenant."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.adapters.db import tables as t
from services.router.adapters.db.repository import SqlRepository
from services.router.handlers.ports.deadletters import DeadLetter

d = t.deadletters.c


class SqlDeadLetters(SqlRepository):
    async def add(self, rows: Sequence[DeadLetter], now: datetime) -> int:
        """Store dead letters not stored yet: a redelivered dead-letter record (same place on the dead-letter topic)
        or a record dead-lettered again before it was redriven (same source position) is kept once."""
        if not rows:
            return 0
        # each found with its tenant, as the table's keys lead with it (the tenant is read from the record, so
        # the same record is under the same tenant each time)
        placed = {(r.tenant_id, r.dl_topic, r.dl_partition, r.dl_offset) for r in rows}
        sources = {(r.tenant_id, r.topic, r.partition, r.offset) for r in rows if r.partition >= 0}
        stored = {
            (x.tenant_id, x.dl_topic, x.dl_partition, x.dl_offset)
            for x in await self.conn.execute(
                select(d.tenant_id, d.dl_topic, d.dl_partition, d.dl_offset).where(
                    tuple_(d.tenant_id, d.dl_topic, d.dl_partition, d.dl_offset).in_(list(placed))
                )
            )
        }
        pending = (
            {
                (x.tenant_id, x.topic, x.partition, x.offset)
                for x in await self.conn.execute(
                    select(d.tenant_id, d.topic, d.partition, d.offset).where(
                        tuple_(d.tenant_id, d.topic, d.partition, d.offset).in_(list(sources)),
                        d.redriven_at.is_(None),
                    )
                )
            }
            if sources
            else set()
        )
        fresh = [
            r
            for r in rows
            if (r.tenant_id, r.dl_topic, r.dl_partition, r.dl_offset) not in stored
            and (r.partition < 0 or (r.tenant_id, r.topic, r.partition, r.offset) not in pending)
        ]
        if fresh:
            await self.conn.execute(
                insert(t.deadletters),
                [dict(deadlettered_at=now, redrives=0, **{k: getattr(r, k) for k in r.__slots__}) for r in fresh],
            )
        return len(fresh)

    async def mark_redriven(self, tenant_id: str, deadletter_id: str, now: datetime) -> None:
        await self.conn.execute(
            update(t.deadletters)
            .where(d.tenant_id == tenant_id, d.id == deadletter_id)
            .values(redriven_at=now, redrives=d.redrives + 1)
        )

    async def forget_before(self, cutoff: datetime) -> int:
        """Dead letters hold personal data: they are kept for a bounded time (SWITCHBOARD_DEADLETTER_RETENTION_DAYS)."""
        result = await self.conn.execute(delete(t.deadletters).where(d.deadlettered_at < cutoff))
        return int(result.rowcount or 0)

    async def one(self, tenant_id: str, deadletter_id: str) -> dict[str, Any] | None:
        return await one(self.conn, tenant_id, deadletter_id)


async def one(conn: AsyncConnection, tenant_id: str, deadletter_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(t.deadletters).where(d.tenant_id == tenant_id, d.id == deadletter_id))).first()
    return dict(row._mapping) if row is not None else None


async def forget_mentioning(conn: AsyncConnection, tenant_id: str, needles: Sequence[str]) -> int:
    """An erased customer's dead letters: every one of the tenant's whose bytes mention one of their identifiers.
    Compared without case: identifiers are stored normalized (an email in lower case) while a dead letter holds
    the record as it came (``Zoe.Smith@Example.org``)."""
    wanted = [n.lower().encode() for n in needles if n]
    if not wanted:
        return 0
    rows = await conn.execute(select(d.id, d.key, d.value).where(d.tenant_id == tenant_id))
    doomed = [r.id for r in rows if any(n in r.value.lower() or (r.key and n in r.key.lower()) for n in wanted)]
    if doomed:
        await conn.execute(delete(t.deadletters).where(d.tenant_id == tenant_id, d.id.in_(doomed)))
    return len(doomed)
