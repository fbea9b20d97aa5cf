"""room for updates: the tables updated on the hot path keep a fifth of each page free

``conversations``, ``assignments`` and ``customers`` are updated by nearly every event; with their pages filled
whole, an update's new row version rarely finds room on its page, so every index gets a new entry (no HOT
update). ``fillfactor = 80`` leaves room on pages written from now on (``VACUUM FULL`` or ``pg_repack``
rewrites older ones, if wanted). PostgreSQL only: SQLite has no such setting.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03 08:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("conversations", "assignments", "customers")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = 80)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
