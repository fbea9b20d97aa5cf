"""routing profiles: capacity in weighted units shared by agents

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "routing_profiles",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_routing_profiles_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_profiles")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_routing_profiles_tenant_id_name")),
    )
    with op.batch_alter_table("agents") as batch_op:
        batch_op.add_column(sa.Column("profile_id", sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch_op:
        batch_op.drop_column("profile_id")
    op.drop_table("routing_profiles")
