"""A ``Keyed`` statement (services/router/adapters/db/keyed.py) reads and writes exactly the rows of the keys it
is given, on SQLite through SQLAlchemy and on PostgreSQL through asyncpg itself, with rows read alike: by
column name as attributes, by position, unpacked and as a mapping, JSON decoded and times aware."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, select, tuple_, update

from services.router.adapters.db import tables as t
from services.router.adapters.db.bulk import insert_rows
from services.router.adapters.db.keyed import Keyed
from services.router.adapters.db.tables.types import TS
from services.router.adapters.db.unit_of_work import SqlStore
from tests.conftest import random_name

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
cu = t.customers.c

PROFILE = Keyed(select(cu.id, cu.tier, cu.attributes, cu.created_at), tuple_(cu.tenant_id, cu.id))
GOLD = Keyed(select(cu.id).where(cu.tier == "gold"), tuple_(cu.tenant_id, cu.id))
BY_ID = Keyed(select(cu.tenant_id, cu.id), cu.id)
TOUCH = Keyed(
    update(t.customers).values(updated_at=bindparam("at", type_=TS), language=None).returning(cu.id, cu.updated_at),
    tuple_(cu.tenant_id, cu.id),
)


def customer(tenant_id: str, customer_id: str, tier: str, attributes: dict[str, Any]) -> dict[str, Any]:
    return dict(
        id=customer_id,
        tenant_id=tenant_id,
        name=None,
        email=None,
        phone=None,
        language="en",
        tier=tier,
        attributes=attributes,
        owner_agent_id=None,
        tags=[],
        consent={},
        created_at=NOW,
    )


@pytest.fixture
async def two_tenants(repo: SqlStore) -> tuple[str, str]:
    a, b = random_name("ka"), random_name("kb")
    async with repo.db.transaction() as conn:
        await insert_rows(conn, t.tenants, [dict(id=x, name=x, created_at=NOW) for x in (a, b)])
        await insert_rows(
            conn,
            t.customers,
            [
                customer(a, f"{a}-1", "gold", {"plan": "pro"}),
                customer(a, f"{a}-2", "standard", {}),
                customer(b, f"{b}-1", "gold", {"plan": "free", "seats": 3}),
            ],
        )
    return a, b


async def test_the_rows_of_the_keys_asked_and_no_other(repo: SqlStore, two_tenants: tuple[str, str]) -> None:
    a, b = two_tenants
    async with repo.db.transaction() as conn:
        asked = [(a, f"{a}-1"), (a, f"{a}-2"), (a, f"{a}-1"), (a, f"{b}-1"), (b, "nobody")]
        rows = sorted(await PROFILE.run(conn, asked), key=lambda r: r.id)
        # another tenant's customer is not found under this tenant's key; a key asked twice is read once
        assert [r.id for r in rows] == [f"{a}-1", f"{a}-2"]
        first = rows[0]
        assert (first.tier, first.attributes, first.created_at) == ("gold", {"plan": "pro"}, NOW)
        assert first.created_at.tzinfo is not None
        assert first[0] == f"{a}-1" and first[1] == "gold"
        customer_id, tier, attributes, created_at = first
        assert (customer_id, tier, attributes, created_at) == (f"{a}-1", "gold", {"plan": "pro"}, NOW)
        assert dict(first._mapping) == {
            "id": f"{a}-1",
            "tier": "gold",
            "attributes": {"plan": "pro"},
            "created_at": NOW,
        }
        with pytest.raises(AttributeError):
            _ = first.no_such_column

        assert [r.id for r in await GOLD.run(conn, asked)] == [f"{a}-1"]  # the statement's own condition holds
        assert sorted(tuple(r) for r in await BY_ID.run(conn, [f"{a}-2", f"{b}-1", "nobody"])) == sorted(
            [(a, f"{a}-2"), (b, f"{b}-1")]
        )
        many = [(a, f"{a}-{n}") for n in range(1, 600)]  # a batch far larger than any plan was made for
        assert sorted(r.id for r in await PROFILE.run(conn, many)) == [f"{a}-1", f"{a}-2"]


async def test_an_update_writes_only_the_keys_rows_with_its_values(
    repo: SqlStore, two_tenants: tuple[str, str]
) -> None:
    a, b = two_tenants
    later = NOW + timedelta(hours=1)
    async with repo.db.transaction() as conn:
        returned = await TOUCH.run(conn, [(a, f"{a}-2"), (b, f"{b}-1")], at=later)
        assert sorted((r.id, r.updated_at) for r in returned) == [(f"{a}-2", later), (f"{b}-1", later)]
    async with repo.db.read() as conn:
        stored = {
            r.id: (r.updated_at, r.language)
            for r in await conn.execute(select(cu.id, cu.updated_at, cu.language).where(cu.tenant_id.in_([a, b])))
        }
    assert stored == {f"{a}-1": (None, "en"), f"{a}-2": (later, None), f"{b}-1": (later, None)}


async def test_no_keys_no_statement_and_its_values_by_name(repo: SqlStore, two_tenants: tuple[str, str]) -> None:
    a, _ = two_tenants
    nothing: Any = None  # a statement run on it would fail
    assert await PROFILE.run(nothing, []) == []
    assert await TOUCH.run(nothing, (), at=NOW) == []
    async with repo.db.transaction() as conn:
        with pytest.raises(TypeError, match="at"):
            await TOUCH.run(conn, [(a, f"{a}-1")])
        with pytest.raises(TypeError, match="when"):
            await TOUCH.run(conn, [(a, f"{a}-1")], at=NOW, when=NOW)
