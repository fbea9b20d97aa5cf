"""which router deployment (topic prefix and consumer group) recorded an agent connection: a deployment infers
presence from its own connections only

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agent_connections") as batch_op:
        batch_op.add_column(sa.Column("deployment", sa.String(length=255), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("agent_connections") as batch_op:
        batch_op.drop_column("deployment")
