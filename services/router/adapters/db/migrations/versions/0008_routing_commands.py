"""routing command log: the outcome of every applied command

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "routing_commands",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_commands")),
    )
    op.create_index(op.f("ix_routing_commands_created_at"), "routing_commands", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_routing_commands_created_at"), table_name="routing_commands")
    op.drop_table("routing_commands")
