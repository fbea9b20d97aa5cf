"""running SLA clocks live on their conversation; sla_timers holds the settled ones

A conversation runs at most one response promise (first or next response) and one resolution promise at a
time: each gets a slot of columns on the conversation's row (``response_*``, ``resolution_*``), so a
conversation opened now is inserted with its clocks instead of two rows of their own. A clock that stops moves
to ``sla_timers``, which the KPIs count. The running clocks stored move to their slots (the latest started of a
slot, should a conversation hold two); any other running clock is settled now, met if it had not broken.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02 05:30:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
SLOTS = {"response": ("first_response", "next_response"), "resolution": ("resolution",)}
FIELDS: dict[str, Any] = {
    "kind": sa.String(32),
    "queue_id": sa.String(36),
    "target_s": sa.Float(),
    "started_at": TS,
    "warn_at": TS,
    "due_at": TS,
    "paused_at": TS,
    "remaining_s": sa.Float(),
    "warned_at": TS,
    "breached_at": TS,
}


def _pending(slot: str, stage: str) -> str:
    return f"{slot}_kind IS NOT NULL AND {slot}_paused_at IS NULL AND {slot}_{stage}_at IS NULL"


def upgrade() -> None:
    for slot in SLOTS:
        for name, type_ in FIELDS.items():
            op.add_column("conversations", sa.Column(f"{slot}_{name}", type_, nullable=True))
    for slot, kinds in SLOTS.items():
        of_kind = ", ".join(f"'{k}'" for k in kinds)
        assignments = ", ".join(f"{slot}_{name} = s.{name}" for name in FIELDS)
        # the latest started running clock of each conversation's slot
        op.execute(
            f"""
            UPDATE conversations SET {assignments}
            FROM (
                SELECT * FROM (
                    SELECT st.*, row_number() OVER (
                        PARTITION BY tenant_id, conversation_id ORDER BY started_at DESC, id DESC
                    ) AS n
                    FROM sla_timers st WHERE stopped_at IS NULL AND kind IN ({of_kind})
                ) ranked WHERE n = 1
            ) s
            WHERE conversations.tenant_id = s.tenant_id AND conversations.id = s.conversation_id
            """
        )
        op.execute(
            f"""
            DELETE FROM sla_timers WHERE stopped_at IS NULL AND kind IN ({of_kind}) AND EXISTS (
                SELECT 1 FROM conversations c
                WHERE c.tenant_id = sla_timers.tenant_id AND c.id = sla_timers.conversation_id
                  AND c.{slot}_kind = sla_timers.kind AND c.{slot}_started_at = sla_timers.started_at
            )
            """
        )
    now = sa.bindparam("now", datetime.now(UTC), type_=TS)
    timers = sa.table("sla_timers", sa.column("stopped_at", TS), sa.column("met"), sa.column("paused_at", TS))
    op.execute(
        timers.update()
        .where(timers.c.stopped_at.is_(None))
        .values(
            stopped_at=now,
            met=sa.or_(timers.c.paused_at.is_not(None), sa.column("due_at", TS) >= now),
        )
    )
    op.drop_index("ix_sla_timers_warn_pending", table_name="sla_timers")
    op.drop_index("ix_sla_timers_breach_pending", table_name="sla_timers")
    for slot in SLOTS:
        for stage, column in (("warn", "warn_at"), ("breach", "due_at")):
            where = sa.text(_pending(slot, "warned" if stage == "warn" else "breached"))
            op.create_index(
                f"ix_conversations_{slot}_{stage}_pending",
                "conversations",
                [f"{slot}_{column}"],
                postgresql_where=where,
                sqlite_where=where,
            )


def downgrade() -> None:
    for slot in SLOTS:
        for stage in ("warn", "breach"):
            op.drop_index(f"ix_conversations_{slot}_{stage}_pending", table_name="conversations")
    columns = ", ".join(FIELDS)
    postgresql = op.get_bind().dialect.name == "postgresql"
    new_id = "gen_random_uuid()::text" if postgresql else "lower(hex(randomblob(16)))"
    for slot in SLOTS:
        # the running clocks back into sla_timers, each with a new id
        op.execute(
            f"""
            INSERT INTO sla_timers (tenant_id, id, conversation_id, {columns})
            SELECT tenant_id, {new_id}, id, {", ".join(f"{slot}_{name}" for name in FIELDS)}
            FROM conversations WHERE {slot}_kind IS NOT NULL
            """
        )
    with op.batch_alter_table("conversations") as batch:
        for slot in SLOTS:
            for name in FIELDS:
                batch.drop_column(f"{slot}_{name}")
    for name, column in (("warn", "warned_at"), ("breach", "breached_at")):
        where = sa.text(f"stopped_at IS NULL AND paused_at IS NULL AND {column} IS NULL")
        op.create_index(
            f"ix_sla_timers_{name}_pending",
            "sla_timers",
            ["warn_at" if name == "warn" else "due_at"],
            postgresql_where=where,
            sqlite_where=where,
        )
