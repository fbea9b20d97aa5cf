"""Outcomes of routing commands (the ``CommandOutcomes`` port), in ``routing_commands``: its primary key is the
tenant and the command's id, so a second application of the same command fails on insert and rolls back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, tuple_
from sqlalchemy.exc import IntegrityError

from services.router.adapters.db import tables as t
from services.router.adapters.db.bulk import insert_rows
from services.router.adapters.db.keyed import Keyed
from services.router.adapters.db.repository import SqlRepository
from services.router.handlers.ports.command_outcomes import AlreadyApplied, Applied, Outcome

c = t.routing_commands.c
_OUTCOMES = Keyed(select(c.id, c.status, c.body), tuple_(c.tenant_id, c.id))


class SqlCommandOutcomes(SqlRepository):
    async def get(self, tenant_id: str, command_id: str) -> Outcome | None:
        row = (
            await self.conn.execute(select(c.status, c.body).where(c.tenant_id == tenant_id, c.id == command_id))
        ).first()
        return (row.status, row.body) if row else None

    async def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[str, Outcome]:
        return {r.id: (r.status, r.body) for r in await _OUTCOMES.run(self.conn, keys)}

    async def record(self, command_id: str, tenant_id: str, kind: str, outcome: Outcome, now: datetime) -> None:
        await self.record_many([Applied(command_id, tenant_id, kind, outcome)], now)

    async def record_many(self, applied: Sequence[Applied], now: datetime) -> None:
        rows = [
            dict(
                id=a.command_id,
                tenant_id=a.tenant_id,
                kind=a.kind,
                status=a.outcome[0],
                body=a.outcome[1],
                created_at=now,
            )
            for a in applied
        ]
        try:
            await insert_rows(self.conn, t.routing_commands, rows)
        except IntegrityError as exc:
            raise AlreadyApplied(", ".join(a.command_id for a in applied)) from exc

    async def forget_before(self, cutoff: datetime) -> int:
        result = await self.conn.execute(delete(t.routing_commands).where(c.created_at < cutoff))
        return int(result.rowcount or 0)
