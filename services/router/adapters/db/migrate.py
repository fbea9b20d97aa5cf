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
    if db.is_sqlite:
        await _upgrade_sqlite(db, revision)
        return
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda sync_conn: command.upgrade(alembic_config(sync_conn), revision))


async def _upgrade_sqlite(db: Database, revision: str) -> None:
    """SQLite changes a key by rebuilding the table (a new table, the rows copied, the old one dropped). With
    foreign keys on, dropping the old table would delete, by cascade, every row that refers to it; so, as
    SQLite's procedure for schema changes asks, they are off during the migration (the pragma has no effect
    inside a transaction, hence before it) and every reference is checked before it commits."""
    async with db.engine.connect() as conn:
        await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        await conn.commit()
        try:
            async with conn.begin():
                await conn.run_sync(lambda sync_conn: command.upgrade(alembic_config(sync_conn), revision))
                broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if broken:
                    raise RuntimeError(f"the migration left rows referring to none: {broken[:5]}")
        finally:
            await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            await conn.commit()


async def revision(db: Database, message: str) -> None:
    """Developers: autogenerate a migration from the difference between tables.py and the database."""
    async with db.engine.begin() as conn:
        await conn.run_sync(
            lambda sync_conn: command.revision(alembic_config(sync_conn), message=message, autogenerate=True)
        )
