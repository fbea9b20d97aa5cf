"""SLA timers (the ``SlaTimers`` port): running clocks in their conversation's slots (tables/sla_slots.py),
settled ones in ``sla_timers``. ``warned_at`` / ``breached_at`` are set in the transaction that publishes the
event, on conversations claimed with SKIP LOCKED, so none fires twice and none is lost."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, case, func, or_, select, tuple_
from sqlalchemy.dialects import postgresql

from services.router.adapters.db import raw
from services.router.adapters.db import tables as t
from services.router.adapters.db.bulk import insert_rows, update_rows
from services.router.adapters.db.keyed import Keyed
from services.router.adapters.db.repository import SqlRepository
from services.router.adapters.db.tables.sla_slots import (
    FIELDS,
    SLOTS,
    breach_pending,
    column_name,
    field,
    warn_pending,
)
from services.router.adapters.db.tables.sla_slots import live as runs_in
from services.router.adapters.db.tables.types import TS
from services.router.domain.model import ConversationStatus
from services.router.domain.sla import slot
from services.router.handlers.ports.records import (
    DueSlaTimer,
    LiveSlaTimer,
    NewSlaTimer,
    SettledSlaTimer,
    SlaDeadlines,
)

_c = t.conversations
_OPEN = ConversationStatus.OPEN.value
_FIRED = frozenset(column_name(s, f) for s in SLOTS for f in ("warned_at", "breached_at"))  # set, never cleared
_SLOT_AT = tuple(3 + 7 * n for n in range(len(SLOTS)))  # where each slot's columns start in claim_due's rows


def slot_row(slot_name: str, **values: Any) -> dict[str, Any]:
    """A slot's columns of the conversation row: ``values`` (by field), every other field NULL (no values: the
    slot emptied)."""
    return {column_name(slot_name, f): values.get(f) for f in FIELDS}


def slot_values(timer: NewSlaTimer) -> dict[str, Any]:
    """A clock starting, as its slot's columns of the conversation row (the rest of the slot cleared)."""
    return slot_row(
        slot(timer.kind),
        kind=timer.kind,
        queue_id=timer.queue_id,
        target_s=timer.target_s,
        started_at=timer.started_at,
        warn_at=timer.warn_at,
        due_at=timer.due_at,
    )


def _due(now: Any, slot_name: str) -> Any:
    """The slot's warning or breach is due: each arm what one partial index holds, due."""
    return or_(
        and_(warn_pending(_c, slot_name), field(_c, slot_name, "warn_at") <= now),
        and_(breach_pending(_c, slot_name), field(_c, slot_name, "due_at") <= now),
    )


def _any_due(now: Any) -> Any:
    """A clock of an open conversation is due (one folded into another by a merge keeps its clocks, which its
    survivor's carry, until an unmerge opens it again)."""
    return and_(or_(*(_due(now, s) for s in SLOTS)), _c.c.status == _OPEN)


def _earliest(a: Any, b: Any) -> Any:
    """The earlier of two deadlines, either NULL (LEAST on PostgreSQL ignores NULL, SQLite's min() does not)."""
    return case((a < b, a), else_=func.coalesce(b, a))


def _slot_fields() -> list[Any]:
    return [field(_c, s, f) for s in SLOTS for f in FIELDS]


_LIVE = Keyed(
    select(_c.c.tenant_id, _c.c.id, *_slot_fields()).where(or_(*(runs_in(_c, s) for s in SLOTS))),
    tuple_(_c.c.tenant_id, _c.c.id),
)


def _clocks(row: Any, tenant_id: str, conversation_id: str) -> list[LiveSlaTimer]:
    """The live clocks of one conversation row read with ``_slot_fields``."""
    out = []
    for n in range(len(SLOTS)):
        values = dict(zip(FIELDS, row[n * len(FIELDS) : (n + 1) * len(FIELDS)], strict=True))
        if values["kind"] is not None:
            out.append(LiveSlaTimer(tenant_id=tenant_id, conversation_id=conversation_id, **values))
    return out


class SqlSlaTimers(SqlRepository):
    """The SLA clocks touched by one transaction."""

    async def _write(self, rows: Iterable[dict[str, Any]]) -> None:
        """One UPDATE per shape of row (slots written): rows keyed by (tenant_id, id) of the conversation."""
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            shapes.setdefault(tuple(sorted(row)), []).append(row)
        for _, same in sorted(shapes.items()):
            await update_rows(self.conn, _c, same, key=("tenant_id", "id"))

    async def start(self, timers: Sequence[NewSlaTimer]) -> None:
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for timer in timers:
            row = rows.setdefault(
                (timer.tenant_id, timer.conversation_id), {"tenant_id": timer.tenant_id, "id": timer.conversation_id}
            )
            row.update(slot_values(timer))
        await self._write(rows.values())

    async def live(self, keys: Iterable[tuple[str, str]]) -> list[LiveSlaTimer]:
        rows = await _LIVE.run(self.conn, keys)
        return [clock for r in rows for clock in _clocks(r[2:], r.tenant_id, r.id)]

    async def resume(self, timers: Sequence[SlaDeadlines]) -> None:
        """Paused clocks run again, towards their recounted deadlines (one statement per slot for the batch)."""
        await self._write(
            {
                "tenant_id": d.tenant_id,
                "id": d.conversation_id,
                column_name(slot(d.kind), "paused_at"): None,
                column_name(slot(d.kind), "remaining_s"): None,
                column_name(slot(d.kind), "warn_at"): d.warn_at,
                column_name(slot(d.kind), "due_at"): d.due_at,
            }
            for d in timers
        )

    async def pause(self, clocks: Sequence[tuple[LiveSlaTimer, float]], now: datetime) -> None:
        await self._write(
            {
                "tenant_id": clock.tenant_id,
                "id": clock.conversation_id,
                column_name(slot(clock.kind), "paused_at"): now,
                column_name(slot(clock.kind), "remaining_s"): left,
            }
            for clock, left in clocks
        )

    async def settle(self, settled: Sequence[SettledSlaTimer], *, emptied: bool = False) -> None:
        """The history's rows in one insert, the slots emptied: each row once, both of its slots at a time."""
        if not settled:
            return
        await insert_rows(
            self.conn,
            t.sla_timers,
            [
                dict(
                    id=s.id,
                    tenant_id=s.clock.tenant_id,
                    conversation_id=s.clock.conversation_id,
                    **{f: getattr(s.clock, f) for f in FIELDS},
                    stopped_at=s.stopped_at,
                    met=s.met,
                )
                for s in settled
            ],
        )
        if emptied:
            return
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for s in settled:
            key = (s.clock.tenant_id, s.clock.conversation_id)
            rows.setdefault(key, {"tenant_id": key[0], "id": key[1]}).update(slot_row(slot(s.clock.kind)))
        await self._write(rows.values())

    async def tenants_due(self, now: datetime) -> list[str]:
        """Tenants with a warning or a breach to fire, sorted (index scans of the pending indexes)."""
        rows = await self.conn.execute(select(_c.c.tenant_id).where(_any_due(now)).distinct())
        return sorted(r.tenant_id for r in rows)

    async def claim_due(self, tenant_id: str, now: datetime, limit: int) -> list[DueSlaTimer]:
        """The tenant's conversations with a clock due, earliest deadline first, rows locked (SKIP LOCKED on
        PostgreSQL); each due clock of them. Which slot is due is decided by the database, with the conditions
        it chose the rows by, so only what a fired clock needs is read. On PostgreSQL the statement's text is
        made once and run by the driver itself (``raw.py``): the tick runs it every second."""
        if self.dialect == "postgresql":
            rows: Iterable[Any] = await raw.fetch(
                self.conn,
                _CLAIM_SQL,
                _CLAIM_DEFAULTS | {"tenant_id": tenant_id, "now": _bound_now(now), "limit": limit},
            )
        else:
            rows = await self.conn.execute(_claim(tenant_id, now, limit))
        due = [
            DueSlaTimer(r[0], r[at + 1], r[at + 2], r[at + 3], r[at + 4], r[at + 5], r[at + 6], r[1], r[2])
            for r in rows
            for at in _SLOT_AT
            if r[at]  # this slot is due (NULL, or false, otherwise)
        ]
        due.sort(key=lambda d: d.due_at)
        return due

    async def mark_fired(
        self, tenant_id: str, warned: Sequence[DueSlaTimer], breached: Sequence[DueSlaTimer], now: datetime
    ) -> None:
        """One statement, one new version of each conversation, whatever fired on it."""
        if not (warned or breached):
            return
        rows: dict[str, dict[str, Any]] = {}
        for stage, fired in (("warned_at", warned), ("breached_at", breached)):
            for d in fired:
                row = rows.setdefault(d.conversation_id, dict.fromkeys(sorted(_FIRED)))
                row[column_name(slot(d.kind), stage)] = now
        # joined by key with the batch's arrays; a column given None keeps what is stored
        await update_rows(
            self.conn,
            _c,
            [dict(tenant_id=tenant_id, id=conversation_id, **row) for conversation_id, row in sorted(rows.items())],
            key=("tenant_id", "id"),
            or_stored=_FIRED,
        )


def _claim(tenant_id: Any, now: Any, limit: Any) -> Select[Any]:
    """claim_due's statement: values, or bind parameters of the same names for the text made once."""
    earliest = _earliest(field(_c, "response", "due_at"), field(_c, "resolution", "due_at"))
    due_fields = ("kind", "queue_id", "due_at", "warn_at", "warned_at", "breached_at")
    return (
        select(
            _c.c.id,
            _c.c.agent_id,
            _c.c.customer_id,
            *(column for s in SLOTS for column in (_due(now, s), *(field(_c, s, f) for f in due_fields))),
        )
        .where(_c.c.tenant_id == tenant_id, _any_due(now))
        .order_by(earliest)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


_CLAIM = _claim(bindparam("tenant_id"), bindparam("now", type_=TS), bindparam("limit")).compile(
    dialect=postgresql.dialect(paramstyle="named")  # type: ignore[no-untyped-call]
)
_CLAIM_SQL = str(_CLAIM)
_CLAIM_DEFAULTS = {name: value for name, value in _CLAIM.params.items() if value is not None}  # the literals


def _bound_now(now: datetime) -> datetime | None:
    return TS.process_bind_param(now, None)
