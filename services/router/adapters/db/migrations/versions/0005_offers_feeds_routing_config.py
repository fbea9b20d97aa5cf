"""offers, agent feeds, routing configuration

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 11:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("queues") as batch_op:
        batch_op.add_column(sa.Column("routing", sa.JSON(), server_default=sa.text("'{}'"), nullable=False))
    with op.batch_alter_table("agents") as batch_op:
        batch_op.add_column(sa.Column("skills", sa.JSON(), server_default=sa.text("'{}'"), nullable=False))
        batch_op.add_column(sa.Column("languages", sa.JSON(), server_default=sa.text("'[]'"), nullable=False))
    with op.batch_alter_table("assignments") as batch_op:
        batch_op.add_column(sa.Column("offer_expires_at", TS, nullable=True))
        batch_op.add_column(sa.Column("accepted_at", TS, nullable=True))
    op.create_table(
        "agent_events",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_agent_events")),
        sa.UniqueConstraint("id", name=op.f("uq_agent_events_id")),
    )
    op.create_index(op.f("ix_agent_events_agent_id_seq"), "agent_events", ["agent_id", "seq"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_agent_events_agent_id_seq"), table_name="agent_events")
    op.drop_table("agent_events")
    with op.batch_alter_table("assignments") as batch_op:
        batch_op.drop_column("accepted_at")
        batch_op.drop_column("offer_expires_at")
    with op.batch_alter_table("agents") as batch_op:
        batch_op.drop_column("languages")
        batch_op.drop_column("skills")
    with op.batch_alter_table("queues") as batch_op:
        batch_op.drop_column("routing")
