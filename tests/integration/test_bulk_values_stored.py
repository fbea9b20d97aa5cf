"""What a set-based write (services/router/adapters/db/bulk.py) stores is exactly what it was given, on both
databases: on PostgreSQL the batch travels as one JSON document, so text that looks like JSON or SQL, empty
strings, bytes of every value, floats, microseconds and JSON's own null must come out as they went in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text

from services.router.adapters.db import tables as t
from services.router.adapters.db.bulk import insert_rows, update_rows
from services.router.adapters.db.migrate import upgrade
from shared.store import Database
from tests.support.databases import empty_database

AT = datetime(2026, 12, 3, 7, 8, 9, 123456, tzinfo=UTC)
TOKYO = timezone(timedelta(hours=9))

TRICKY_TEXTS = [
    'say "hi" \\ back\\slash \\u0041 \\n',
    "line one\nline two\ttabbed\r",
    "null",
    "",
    "émigré 日本語 🙂 \u2028",
    "'; DROP TABLE tenants; --",
    '{"looks": "like json"}',
]


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    server = request.getfixturevalue("servers").database_url if request.param == "postgresql" else None
    async with empty_database(request.param, tmp_path, server) as database:
        await upgrade(database)
        yield database


async def test_text_and_json_come_back_as_given(db: Database) -> None:
    rows = [
        {"id": f"t{n}", "name": name, "created_at": AT, "routing_state": {"name": name, "n": n}}
        for n, name in enumerate(TRICKY_TEXTS)
    ]
    rows.append({"id": "nothing", "name": "x", "created_at": AT, "routing_state": None})
    async with db.transaction() as conn:
        await insert_rows(conn, t.tenants, rows)
    async with db.read() as conn:
        stored = {r.id: r for r in await conn.execute(select(t.tenants))}
        # JSON's None is stored as SQLAlchemy stores it for this column: the JSON null, not SQL NULL
        sql_null = (await conn.execute(text("SELECT routing_state IS NULL FROM tenants WHERE id = 'nothing'"))).scalar()
    for n, name in enumerate(TRICKY_TEXTS):
        assert stored[f"t{n}"].name == name
        assert stored[f"t{n}"].routing_state == {"name": name, "n": n}
        assert stored[f"t{n}"].created_at == AT
    assert stored["nothing"].routing_state is None
    assert not sql_null


async def test_bytes_of_every_value_and_a_missing_key_come_back_as_given(db: Database) -> None:
    values = [bytes(range(256)), b"", b"\\x00 not hex", b'{"a": 1}']
    rows = [
        {"topic": f"bulk.{n}", "key": None if n == 0 else value, "value": value, "created_at": AT}
        for n, value in enumerate(values)
    ]
    async with db.transaction() as conn:
        await insert_rows(conn, t.outbox, rows)
    async with db.read() as conn:
        stored = {r.topic: r for r in await conn.execute(select(t.outbox))}
    for n, value in enumerate(values):
        assert stored[f"bulk.{n}"].value == value
        assert stored[f"bulk.{n}"].key == (None if n == 0 else value)


async def test_numbers_and_times_come_back_exactly(db: Database) -> None:
    async with db.transaction() as conn:
        await insert_rows(conn, t.tenants, [{"id": "acme", "name": "Acme", "created_at": AT}])
        customers = [
            {
                "tenant_id": "acme",
                "id": f"c{n}",
                "language_confidence": confidence,
                "tier": "gold",
                "tags": ["vip", "ß"],
                "attributes": {"nested": {"list": [1, 2.5, None, True]}},
                # a time in another zone is stored as the same instant
                "created_at": AT.astimezone(TOKYO) + timedelta(microseconds=n),
            }
            for n, confidence in enumerate([0.1 + 0.2, 1e-300, 0.0, 1.0])
        ]
        await insert_rows(conn, t.customers, customers)
    async with db.read() as conn:
        stored = {r.id: r for r in await conn.execute(select(t.customers))}
    for n, confidence in enumerate([0.30000000000000004, 1e-300, 0.0, 1.0]):
        row = stored[f"c{n}"]
        assert row.language_confidence == confidence
        assert row.created_at == AT + timedelta(microseconds=n)
        assert row.tags == ["vip", "ß"]
        assert row.attributes == {"nested": {"list": [1, 2.5, None, True]}}


async def test_an_update_sets_what_it_is_given_and_keeps_the_rest(db: Database) -> None:
    async with db.transaction() as conn:
        await insert_rows(conn, t.tenants, [{"id": "acme", "name": "Acme", "created_at": AT}])
        await insert_rows(
            conn,
            t.customers,
            [{"tenant_id": "acme", "id": "c1", "name": "Ann", "language": "fr", "created_at": AT}],
        )
        later = AT + timedelta(seconds=1)
        await update_rows(
            conn,
            t.customers,
            [{"tenant_id": "acme", "id": "c1", "name": TRICKY_TEXTS[0], "language": None, "attributes": {"k": "v"}}],
            key=("tenant_id", "id"),
            or_stored=frozenset({"language"}),  # None here: what is stored stays
            updated_at=later,
        )
    async with db.read() as conn:
        row = (await conn.execute(select(t.customers))).one()
    assert (row.name, row.language, row.attributes, row.updated_at) == (TRICKY_TEXTS[0], "fr", {"k": "v"}, later)
