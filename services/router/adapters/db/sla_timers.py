"""SLA timers in ``sla_timers`` (the ``SlaTimers`` port). ``warned_at`` / ``breached_at`` are set in the
transaction that publishes the event, on rows claimed with SKIP LOCKED, so none fires twice and none is lost."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.adapters.db import tables as t
from services.router.adapters.db.bulk import insert_rows, update_rows
from services.router.adapters.db.repository import SqlRepository
from services.router.adapters.db.statements import key_in, one_of, update_by_id
from services.router.adapters.db.tables.operations import BREACH_PENDING, WARN_PENDING
from services.router.domain.sla import TimerKind
from services.router.handlers.ports.records import DueSlaTimer, LiveSlaTimer, NewSlaTimer, SlaDeadlines, fields_of

_FIRED = frozenset({"warned_at", "breached_at"})  # a clock's stage once fired stays fired: set, never cleared


def _warn_due(now: datetime) -> Any:
    return and_(WARN_PENDING, t.sla_timers.c.warn_at <= now)  # what ix_sla_timers_warn_pending holds, due


def _breach_due(now: datetime) -> Any:
    return and_(BREACH_PENDING, t.sla_timers.c.due_at <= now)  # what ix_sla_timers_breach_pending holds, due


def _of(conn: AsyncConnection, keys: list[tuple[str, str]]) -> Any:
    """The clocks of these (tenant, conversation id), found by the tenant's keys."""
    s = t.sla_timers.c
    return key_in(conn, tuple_(s.tenant_id, s.conversation_id), keys)


class SqlSlaTimers(SqlRepository):
    """The SLA clocks touched by one transaction."""

    async def start(self, timers: Sequence[NewSlaTimer]) -> None:
        if timers:
            await insert_rows(self.conn, t.sla_timers, [fields_of(timer) for timer in timers])

    async def conversations_with_clock(self, keys: Iterable[tuple[str, str]], kind: TimerKind) -> set[str]:
        """Which of these (tenant, conversation) already have a clock of this kind not stopped (running or
        paused)."""
        ids = list(keys)
        if not ids:
            return set()
        s = t.sla_timers.c
        rows = await self.conn.execute(
            select(s.conversation_id).where(_of(self.conn, ids), s.kind == kind.value, s.stopped_at.is_(None))
        )
        return {r.conversation_id for r in rows}

    async def paused(self, keys: Iterable[tuple[str, str]]) -> list[LiveSlaTimer]:
        """The paused clocks of these (tenant, conversation) (pending on the customer)."""
        s = t.sla_timers.c
        return await self._live(keys, s.paused_at.is_not(None))

    async def resume(self, timers: Sequence[SlaDeadlines]) -> None:
        """Paused clocks run again, towards their recounted deadlines (one statement for the batch)."""
        await update_by_id(
            self.conn,
            t.sla_timers,
            [dict(b_tenant_id=d.tenant_id, b_id=d.id, b_warn_at=d.warn_at, b_due_at=d.due_at) for d in timers],
            paused_at=None,
            remaining_s=None,
            warn_at=bindparam("b_warn_at"),
            due_at=bindparam("b_due_at"),
        )

    async def running(self, keys: Iterable[tuple[str, str]], kind: TimerKind) -> list[LiveSlaTimer]:
        s = t.sla_timers.c
        return await self._live(keys, s.kind == kind.value, s.paused_at.is_(None))

    async def _live(self, keys: Iterable[tuple[str, str]], *where: ColumnElement[bool]) -> list[LiveSlaTimer]:
        """The clocks not stopped on these (tenant, conversation) that also meet ``where``."""
        ids = list(keys)
        if not ids:
            return []
        s = t.sla_timers.c
        rows = await self.conn.execute(
            select(s.id, s.tenant_id, s.queue_id, s.target_s, s.due_at, s.remaining_s).where(
                _of(self.conn, ids), s.stopped_at.is_(None), *where
            )
        )
        return [LiveSlaTimer(*r) for r in rows]

    async def pause(self, remaining: Mapping[tuple[str, str], float], now: datetime) -> None:
        """(tenant, timer id) → seconds it has left (one statement for the batch)."""
        await update_by_id(
            self.conn,
            t.sla_timers,
            [
                dict(b_tenant_id=tenant_id, b_id=timer_id, b_at=now, b_left=left)
                for (tenant_id, timer_id), left in remaining.items()
            ],
            paused_at=bindparam("b_at"),
            remaining_s=bindparam("b_left"),
        )

    async def stop(self, keys: Iterable[tuple[str, str]], kinds: Sequence[TimerKind], now: datetime) -> None:
        """Met first (answered before the deadline, or paused: a paused clock cannot break), then the rest missed."""
        ids = list(keys)
        if not ids:
            return
        s = t.sla_timers.c
        base = (
            update(t.sla_timers)
            .where(
                _of(self.conn, ids),
                one_of(self.conn, s.kind, [k.value for k in kinds], "kinds"),
                s.stopped_at.is_(None),
            )
            .values(stopped_at=now)
        )
        await self.conn.execute(base.where(or_(s.paused_at.is_not(None), s.due_at >= now)).values(met=True))
        await self.conn.execute(base.values(met=False))

    async def tenants_due(self, now: datetime) -> list[str]:
        """Tenants with a warning or a breach to fire, sorted."""
        s = t.sla_timers.c
        # two index range scans (partial indexes on warn_at / due_at of live timers), not a table scan
        return sorted(
            {
                r.tenant_id
                for stage in (_warn_due(now), _breach_due(now))
                for r in await self.conn.execute(select(s.tenant_id).where(stage).distinct())
            }
        )

    async def claim_due(self, tenant_id: str, now: datetime, limit: int) -> list[DueSlaTimer]:
        """The tenant's due clocks, earliest deadline first, rows locked (SKIP LOCKED on PostgreSQL)."""
        s, c = t.sla_timers.c, t.conversations.c
        # the earliest due clocks chosen and locked first, then joined with their conversations: joined before the
        # limit, every due clock of the backlog was looked up in conversations on every claim
        due = (
            select(s.id, s.conversation_id, s.kind, s.queue_id, s.due_at, s.warn_at, s.warned_at, s.breached_at)
            .where(or_(_warn_due(now), _breach_due(now)), s.tenant_id == tenant_id)
            .order_by(s.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte("due")
        )
        if self.conn.dialect.name == "postgresql":
            due = due.prefix_with("MATERIALIZED")  # locked once, as chosen (see outbox.take)
        d = due.c
        rows = await self.conn.execute(
            select(*d, c.agent_id, c.customer_id)
            .join(t.conversations, (c.tenant_id == tenant_id) & (c.id == d.conversation_id))
            .order_by(d.due_at)
        )
        return [DueSlaTimer(**r._mapping) for r in rows]

    async def mark_fired(self, tenant_id: str, warned: Sequence[str], breached: Sequence[str], now: datetime) -> None:
        """One statement, one new version of each clock, whether it warned, breached or both."""
        if not (warned or breached):
            return
        done_warning, done_breach = set(warned), set(breached)
        rows = [
            dict(
                tenant_id=tenant_id,
                id=timer_id,
                warned_at=now if timer_id in done_warning else None,
                breached_at=now if timer_id in done_breach else None,
            )
            for timer_id in sorted(done_warning | done_breach)
        ]
        # joined by key with the batch's arrays: each clock matched once (not every clock against every id)
        await update_rows(self.conn, t.sla_timers, rows, key=("tenant_id", "id"), or_stored=_FIRED)
