"""The SLA clocks that run on a conversation, as columns of its row: at most one response promise (first or
next response) and one resolution promise run at a time, each in its slot. A conversation opened now is
inserted with its clocks, so starting them writes no row of their own; a clock that stops is settled into
``sla_timers`` (tables/operations.py), the history the KPIs count."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, ColumnElement, Float, Index, String, Table, and_

from services.router.adapters.db.tables.types import TS, Id

SLOTS = ("response", "resolution")
# what each slot holds of its clock, as sla_timers holds it (its kind NULL: the slot is empty)
FIELDS = (
    "kind",
    "queue_id",
    "target_s",
    "started_at",
    "warn_at",
    "due_at",
    "paused_at",
    "remaining_s",
    "warned_at",
    "breached_at",
)
_TYPES: dict[str, Any] = {
    "kind": String(32),
    "queue_id": Id,
    "target_s": Float,
    "remaining_s": Float,
}


def column_name(slot: str, field: str) -> str:
    return f"{slot}_{field}"


def slot_columns() -> list[Column[Any]]:
    """Both slots' columns, all nullable (an empty slot is all NULL)."""
    return [Column(column_name(s, f), _TYPES.get(f, TS)) for s in SLOTS for f in FIELDS]


def field(table: Table, slot: str, name: str) -> ColumnElement[Any]:
    return table.c[column_name(slot, name)]


def live(table: Table, slot: str) -> ColumnElement[bool]:
    return field(table, slot, "kind").is_not(None)


def warn_pending(table: Table, slot: str) -> ColumnElement[bool]:
    """A running clock whose warning has not fired (what its partial index holds)."""
    return and_(live(table, slot), field(table, slot, "paused_at").is_(None), field(table, slot, "warned_at").is_(None))


def breach_pending(table: Table, slot: str) -> ColumnElement[bool]:
    """A running clock whose breach has not fired (what its partial index holds)."""
    return and_(
        live(table, slot), field(table, slot, "paused_at").is_(None), field(table, slot, "breached_at").is_(None)
    )


def pending_indexes(table: Table) -> None:
    """The clocks still to warn, and still to breach, per slot: the tick reads what is due from these, not every
    conversation (a partial index serves a query only where the query's condition implies the index's)."""
    for slot in SLOTS:
        for stage, when, where in (
            ("warn", "warn_at", warn_pending(table, slot)),
            ("breach", "due_at", breach_pending(table, slot)),
        ):
            Index(
                f"ix_conversations_{slot}_{stage}_pending",
                field(table, slot, when),
                postgresql_where=where,
                sqlite_where=where,
            )
