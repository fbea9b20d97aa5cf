"""the SLA tick's indexes hold the clocks still to fire, not every live clock

``ix_sla_timers_live_warn_at`` and ``ix_sla_timers_live_due_at`` held every clock not stopped, so a clock that had
warned and breached stayed in both until its conversation was answered or resolved, and each tick read it again
(a backlog of 20,000 due clocks, fired 1,000 per transaction, read all 20,000 every time). The new indexes hold a
clock until its warning, and until its breach, has fired (or it stops, or pauses).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "stopped_at IS NULL"
WARN_PENDING = "stopped_at IS NULL AND paused_at IS NULL AND warned_at IS NULL"
BREACH_PENDING = "stopped_at IS NULL AND paused_at IS NULL AND breached_at IS NULL"


def _index(name: str, column: str, where: str) -> None:
    op.create_index(name, "sla_timers", [column], postgresql_where=sa.text(where), sqlite_where=sa.text(where))


def upgrade() -> None:
    op.drop_index("ix_sla_timers_live_warn_at", table_name="sla_timers")
    op.drop_index("ix_sla_timers_live_due_at", table_name="sla_timers")
    _index("ix_sla_timers_warn_pending", "warn_at", WARN_PENDING)
    _index("ix_sla_timers_breach_pending", "due_at", BREACH_PENDING)


def downgrade() -> None:
    op.drop_index("ix_sla_timers_warn_pending", table_name="sla_timers")
    op.drop_index("ix_sla_timers_breach_pending", table_name="sla_timers")
    _index("ix_sla_timers_live_warn_at", "warn_at", LIVE)
    _index("ix_sla_timers_live_due_at", "due_at", LIVE)
