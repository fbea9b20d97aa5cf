"""The set-based writes run by asyncpg itself (services/router/adapters/db/raw.py) behave as SQLAlchemy's own
execution of the same text: inside the unit's transaction even as its first statement, a failure raised as the
same SQLAlchemy error with the same SQLSTATE (so ``shared/failures.py`` classifies it alike), and a connection
dropped under a statement invalidated, the next unit served by a new one. On the real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import exc, func, select, text

from services.router.adapters.db import raw
from services.router.adapters.db import tables as t
from services.router.adapters.db.bulk import insert_rows
from services.router.adapters.db.migrate import upgrade
from shared.failures import is_retriable, sqlstate
from shared.store import Database
from tests.conftest import Servers, random_name
from tests.support.databases import create_database, drop_database

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def db(servers: Servers) -> AsyncIterator[Database]:
    url = await create_database(servers.database_url, random_name("switchboard_raw_"))
    database = Database(url, pool_size=1)  # one connection: a dropped one must be replaced, not sidestepped
    try:
        await upgrade(database)
        yield database
    finally:
        await database.close()
        await drop_database(url)


def tenant_row(tenant_id: str) -> dict[str, object]:
    return {"id": tenant_id, "name": tenant_id, "created_at": NOW}


async def tenants(db: Database) -> set[str]:
    async with db.read() as conn:
        return set((await conn.execute(select(t.tenants.c.id))).scalars())


def test_named_parameters_become_numbered_ones_once_each() -> None:
    statement = raw.numbered("SELECT CAST(:a AS TEXT[]), :b, :a, x::int, ':c' FROM y WHERE z = :b_2")
    assert statement.sql == "SELECT CAST($1 AS TEXT[]), $2, $1, x::int, ':c' FROM y WHERE z = $3"
    assert statement.names == ("a", "b", "b_2")


async def test_a_first_statement_runs_inside_the_units_transaction(db: Database) -> None:
    class Abandon(Exception):
        pass

    with pytest.raises(Abandon):
        async with db.transaction() as conn:
            await insert_rows(conn, t.tenants, [tenant_row("rolled-back")])  # the unit's first statement
            async with db.engine.connect() as other:  # not committed: another connection does not see it
                assert (await other.execute(select(func.count()).select_from(t.tenants))).scalar_one() == 0
            raise Abandon
    assert await tenants(db) == set()
    async with db.transaction() as conn:
        await insert_rows(conn, t.tenants, [tenant_row("kept")])
    assert await tenants(db) == {"kept"}


async def test_a_failure_is_the_error_sqlalchemy_raises_for_the_same_statement(db: Database) -> None:
    async with db.transaction() as conn:
        await insert_rows(conn, t.tenants, [tenant_row("one")])
    sql = 'INSERT INTO "tenants" ("id", "name", "created_at") VALUES (:id, :name, :at)'
    params = {"id": "one", "name": "again", "at": NOW}
    failures = []
    for run in (lambda c: raw.fetch(c, sql, params), lambda c: c.execute(text(sql), params)):
        with pytest.raises(exc.DBAPIError) as raised:
            async with db.transaction() as conn:
                await run(conn)
        failures.append(raised.value)
    ours, theirs = failures
    assert type(ours) is type(theirs) is exc.IntegrityError
    assert sqlstate(ours) == sqlstate(theirs) == "23505"
    assert not is_retriable(ours) and not ours.connection_invalidated
    async with db.transaction() as conn:  # the connection went back to the pool fit for use
        await insert_rows(conn, t.tenants, [tenant_row("two")])
    assert await tenants(db) == {"one", "two"}


async def test_a_connection_dropped_under_a_statement_is_retriable_and_replaced(db: Database) -> None:
    with pytest.raises(exc.DBAPIError) as raised:
        async with db.transaction() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            async with db.engine.connect() as killer:  # pool_size=1 lends one more (max_overflow): the killer
                await killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await insert_rows(conn, t.tenants, [tenant_row("lost")])
    assert raised.value.connection_invalidated
    assert is_retriable(raised.value)
    async with db.transaction() as conn:
        await insert_rows(conn, t.tenants, [tenant_row("after")])
    assert await tenants(db) == {"after"}
