"""access and privacy: keys bound to agents, the audit log, erased customers

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch_op:
        batch_op.add_column(sa.Column("agent_id", sa.String(length=36), nullable=True))
    with op.batch_alter_table("customers") as batch_op:
        batch_op.add_column(sa.Column("erased_at", TS, nullable=True))
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.add_column(sa.Column("erased_at", TS, nullable=True))
    op.create_table(
        "erasures",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("erased_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "digest", name=op.f("pk_erasures")),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("route", sa.String(length=255), nullable=False),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_tenant_id_seq"), "audit_log", ["tenant_id", "seq"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_log_tenant_id_seq"), table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("erasures")
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.drop_column("erased_at")
    with op.batch_alter_table("customers") as batch_op:
        batch_op.drop_column("erased_at")
    with op.batch_alter_table("api_keys") as batch_op:
        batch_op.drop_column("agent_id")
