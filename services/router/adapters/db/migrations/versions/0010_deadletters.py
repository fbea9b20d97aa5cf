"""dead letters as a table (list, redrive), and what the edge sanitized in a message

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 09:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("sanitized", sa.JSON(), nullable=True))
    op.create_table(
        "deadletters",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("deadlettered_at", TS, nullable=False),
        sa.Column("redriven_at", TS, nullable=True),
        sa.Column("redrives", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("dl_topic", sa.String(length=255), nullable=False),
        sa.Column("dl_partition", sa.Integer(), nullable=False),
        sa.Column("dl_offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deadletters")),
        sa.UniqueConstraint(
            "dl_topic", "dl_partition", "dl_offset", name=op.f("uq_deadletters_dl_topic_dl_partition_dl_offset")
        ),
    )
    op.create_index(
        op.f("ix_deadletters_tenant_id_deadlettered_at"), "deadletters", ["tenant_id", "deadlettered_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_deadletters_tenant_id_deadlettered_at"), table_name="deadletters")
    op.drop_table("deadletters")
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("sanitized")
