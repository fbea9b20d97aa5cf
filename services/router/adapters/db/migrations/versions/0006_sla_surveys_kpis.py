"""sla timers, surveys, lifecycle columns for KPIs

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 11:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)
revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.add_column(sa.Column("first_response_at", TS, nullable=True))
        batch_op.add_column(sa.Column("awaiting", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("pending_since", TS, nullable=True))
        batch_op.add_column(sa.Column("escalated_at", TS, nullable=True))
    op.create_index(
        op.f("ix_conversations_tenant_id_opened_at"), "conversations", ["tenant_id", "opened_at"], unique=False
    )
    op.create_table(
        "sla_timers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("queue_id", sa.String(length=36), nullable=True),
        sa.Column("target_s", sa.Float(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("warn_at", TS, nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("paused_at", TS, nullable=True),
        sa.Column("remaining_s", sa.Float(), nullable=True),
        sa.Column("warned_at", TS, nullable=True),
        sa.Column("breached_at", TS, nullable=True),
        sa.Column("stopped_at", TS, nullable=True),
        sa.Column("met", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_sla_timers_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_timers")),
    )
    op.create_index(op.f("ix_sla_timers_conversation_id"), "sla_timers", ["conversation_id"], unique=False)
    for column in ("warn_at", "due_at"):
        op.create_index(
            f"ix_sla_timers_live_{column}",
            "sla_timers",
            [column],
            unique=False,
            postgresql_where=sa.text("stopped_at IS NULL"),
            sqlite_where=sa.text("stopped_at IS NULL"),
        )
    op.create_table(
        "surveys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("agent_id", sa.String(length=36), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("sent_at", TS, nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("answered_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_surveys_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surveys")),
        sa.UniqueConstraint("token", name=op.f("uq_surveys_token")),
    )
    op.create_index(op.f("ix_surveys_customer_id_sent_at"), "surveys", ["customer_id", "sent_at"], unique=False)
    op.create_index(op.f("ix_surveys_conversation_id"), "surveys", ["conversation_id"], unique=False)


def downgrade() -> None:
    op.drop_table("surveys")
    op.drop_table("sla_timers")
    op.drop_index(op.f("ix_conversations_tenant_id_opened_at"), table_name="conversations")
    with op.batch_alter_table("conversations") as batch_op:
        for column in ("escalated_at", "pending_since", "awaiting", "first_response_at"):
            batch_op.drop_column(column)
