"""Schema migrations (Alembic) on either database: `switchboard migrate`, and at start-up of the embedded desk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

from shared.store import Database

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(connection: Any) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(db: Database, revision: str = "head") -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda sync_conn: command.upgrade(alembic_config(sync_conn), revision))


async def revision(db: Database, message: str) -> None:
    """Developers: autogenerate a migration from the difference between tables.py and the database."""
    async with db.engine.begin() as conn:
        await conn.run_sync(
            lambda sync_conn: command.revision(alembic_config(sync_conn), message=message, autogenerate=True)
        )
