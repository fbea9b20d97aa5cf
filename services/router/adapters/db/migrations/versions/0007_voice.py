"""voice: where an agent takes calls, abandoned calls; message attachments

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 12:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch_op:
        batch_op.add_column(sa.Column("voice_endpoint", sa.String(length=128), nullable=True))
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.add_column(sa.Column("abandoned_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("attachments", sa.JSON(), server_default=sa.text("'[]'"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("attachments")
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.drop_column("abandoned_at")
    with op.batch_alter_table("agents") as batch_op:
        batch_op.drop_column("voice_endpoint")
