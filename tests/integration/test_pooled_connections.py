"""What a pooled PostgreSQL connection costs and how it recovers: a transaction is its BEGIN, its statements and
its COMMIT, with no ping before it; a read without a snapshot is its one statement; and a connection the server
closed (a restart, a terminated backend) is replaced when it is next taken from the pool, without an error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from shared.store import Database
from tests.conftest import Servers, random_name
from tests.support.databases import create_database, drop_database

pytestmark = pytest.mark.servers

ROUNDS = 20


@pytest.fixture
async def database(servers: Servers) -> AsyncIterator[tuple[Database, str]]:
    name = random_name("switchboard_pool_")
    url = await create_database(servers.database_url, name)
    db = Database(url, pool_size=2)
    try:
        async with db.transaction() as conn:
            await conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
            await conn.execute(text("CREATE TABLE things (id int PRIMARY KEY)"))
        yield db, name
    finally:
        await db.close()
        await drop_database(url)


async def calls(db: Database, name: str) -> dict[str, int]:
    """Calls per statement kind (its first word) in database ``name`` since the last reset."""
    async with db.read(snapshot=False) as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT s.query, s.calls FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                    "WHERE d.datname = :name AND s.query !~* 'pg_stat_statements'"
                ),
                {"name": name},
            )
        ).all()
    out: dict[str, int] = {}
    for query, n in rows:
        word = str(query).split()[0].upper().rstrip(";") if str(query).split() else "(empty)"
        out[word] = out.get(word, 0) + int(n)
    return out


async def reset(db: Database) -> None:
    async with db.read(snapshot=False) as conn:
        await conn.execute(text("SELECT pg_stat_statements_reset()"))


async def test_a_transaction_costs_its_begin_its_statements_and_its_commit(database: tuple[Database, str]) -> None:
    db, name = database
    await reset(db)
    for n in range(ROUNDS):
        async with db.transaction() as conn:
            await conn.execute(text("INSERT INTO things VALUES (:n)"), {"n": n})
    assert await calls(db, name) == {"BEGIN": ROUNDS, "INSERT": ROUNDS, "COMMIT": ROUNDS}


async def test_a_read_without_a_snapshot_is_its_one_statement(database: tuple[Database, str]) -> None:
    db, name = database
    await reset(db)
    for _ in range(ROUNDS):
        async with db.read(snapshot=False) as conn:
            await conn.execute(text("SELECT count(*) FROM things"))
    found = await calls(db, name)
    assert found.get("BEGIN", 0) == 0 and found.get("ROLLBACK", 0) == 0, found
    assert found["SELECT"] == ROUNDS, found
    await reset(db)
    for _ in range(ROUNDS):  # with a snapshot: one read-only transaction around it
        async with db.read() as conn:
            await conn.execute(text("SELECT count(*) FROM things"))
    assert await calls(db, name) == {"BEGIN": ROUNDS, "SELECT": ROUNDS, "ROLLBACK": ROUNDS}


async def test_a_connection_the_server_closed_is_replaced_when_next_taken(
    database: tuple[Database, str], servers: Servers
) -> None:
    db, _ = database
    async with db.read() as conn:
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar()
    # the pooled connection's backend ends, as every backend does when the server restarts
    admin = Database(servers.database_url, pool_size=1)
    try:
        async with admin.transaction() as conn:
            assert (await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})).scalar()
    finally:
        await admin.close()
    await asyncio.sleep(0.5)  # the closed socket reaches the client
    async with db.transaction() as conn:  # no error: a fresh connection
        await conn.execute(text("INSERT INTO things VALUES (1)"))
        assert (await conn.execute(text("SELECT pg_backend_pid()"))).scalar() != pid
