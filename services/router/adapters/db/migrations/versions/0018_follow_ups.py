"""follow-up after a resolution: when it is due, and when it went (a reply after it reopens the conversation)

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30 18:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)
DUE = sa.text("follow_up_due_at IS NOT NULL")

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("follow_up_due_at", TS))
        batch.add_column(sa.Column("followed_up_at", TS))
    op.create_index(
        "ix_conversations_follow_up_due",
        "conversations",
        ["follow_up_due_at"],
        postgresql_where=DUE,
        sqlite_where=DUE,
    )


def downgrade() -> None:
    op.drop_index("ix_conversations_follow_up_due", table_name="conversations")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("followed_up_at")
        batch.drop_column("follow_up_due_at")
