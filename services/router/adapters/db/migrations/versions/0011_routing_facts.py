"""routing facts: each open conversation's routing state, the tenant's routing counters, presence reasons, and
agents' live connections

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.add_column(sa.Column("routing", sa.JSON(), nullable=True))
    with op.batch_alter_table("tenants") as batch_op:
        batch_op.add_column(sa.Column("routing_state", sa.JSON(), nullable=True))
    with op.batch_alter_table("agents") as batch_op:
        batch_op.add_column(sa.Column("presence_reason", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("presence_changed_at", TS, nullable=True))
    op.create_table(
        "agent_connections",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.String(length=36), nullable=False),
        sa.Column("replica", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_connections")),
    )
    op.create_index(
        op.f("ix_agent_connections_tenant_id_agent_id"), "agent_connections", ["tenant_id", "agent_id"], unique=False
    )
    op.create_index(
        op.f("ix_agent_connections_replica_closed_at"), "agent_connections", ["replica", "closed_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_agent_connections_replica_closed_at"), table_name="agent_connections")
    op.drop_index(op.f("ix_agent_connections_tenant_id_agent_id"), table_name="agent_connections")
    op.drop_table("agent_connections")
    with op.batch_alter_table("agents") as batch_op:
        batch_op.drop_column("presence_changed_at")
        batch_op.drop_column("presence_reason")
    with op.batch_alter_table("tenants") as batch_op:
        batch_op.drop_column("routing_state")
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.drop_column("routing")
