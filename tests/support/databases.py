"""A PostgreSQL database of a run's own on the shared test server. The routing sweep of a router reads its whole
database (in production one deployment owns one database): a router started on the shared test database would
serve every other test's tenants too, whose timers and waiting work then count as its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.store import Database
from tests.conftest import random_name


async def public_tables(conn: AsyncConnection, *, views: bool = False) -> list[str]:
    """The names of the tables in the public schema (the store's), with its views too if ``views``."""
    kinds = "" if views else " AND table_type = 'BASE TABLE'"
    query = f"SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'{kinds}"
    return [r[0] for r in await conn.execute(text(query))]


def _admin_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"


async def _run(url: str, sql: str) -> None:
    import asyncpg  # type: ignore[import-untyped]  # the driver itself: CREATE DATABASE cannot run in a transaction

    conn = await asyncpg.connect(_admin_url(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def create_database(url: str, name: str) -> str:
    """Makes database ``name`` anew on the server of ``url``; returns its url (same driver as ``url``)."""
    await _run(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await _run(url, f'CREATE DATABASE "{name}"')
    return f"{url.rsplit('/', 1)[0]}/{name}"


async def drop_database(url: str) -> None:
    server, name = url.rsplit("/", 1)
    await _run(server + "/postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_database(url: str, prefix: str = "switchboard_test_") -> Iterator[str]:
    """A database of the caller's own, dropped after (for synchronous fixtures)."""
    own = asyncio.run(create_database(url, random_name(prefix)))
    try:
        yield own
    finally:
        asyncio.run(drop_database(own))


@asynccontextmanager
async def empty_database(dialect: str, folder: Path, server_url: str | None) -> AsyncIterator[Database]:
    """An empty database of ``dialect``: a SQLite file in ``folder``, or a PostgreSQL database of its own on the
    server of ``server_url``, dropped after."""
    if dialect == "sqlite":
        url, drop = f"sqlite+aiosqlite:///{folder}/{random_name('db')}.db", None
    else:
        assert server_url is not None, "PostgreSQL needs the test servers"
        url = drop = await create_database(server_url, random_name("switchboard_m_"))
    db = Database(url)
    try:
        yield db
    finally:
        await db.close()
        if drop:
            await drop_database(drop)
