"""The Alembic migrations produce exactly the schema tables.py describes, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.router.adapters.db.migrate import upgrade
from services.router.adapters.db.tables import metadata
from shared.store import Database


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
async def test_migrations_match_the_table_definitions(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite+aiosqlite:///{tmp_path}/m.db"
        if dialect == "sqlite"
        else request.getfixturevalue("servers").database_url
    )
    db = Database(url)
    try:
        await upgrade(db)
        await upgrade(db)  # idempotent: a second start does nothing
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}), metadata)
            )
    finally:
        await db.close()
    if dialect == "postgresql":
        # the shared test database may hold other programs' tables (benchmarks); the SQLite run, on a fresh
        # file, still catches a table that migrations create but tables.py no longer has
        diff = [d for d in diff if not (d[0] == "remove_table" and d[1].name not in metadata.tables)]
    assert diff == []
