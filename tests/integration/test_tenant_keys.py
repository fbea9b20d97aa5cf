"""Every key of a tenant table leads with ``tenant_id``: its primary key, each unique constraint and unique index,
and each foreign key, read from the database the migrations made (both dialects). A tenant's rows can so be
moved to a database server of their own together, and a row cannot refer to another tenant's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, inspect, select
from sqlalchemy.exc import IntegrityError

from services.router.adapters.db import tables as t
from services.router.adapters.db.bulk import insert_rows
from services.router.adapters.db.migrate import upgrade
from shared.store import Database
from tests.support.databases import empty_database

# Written out here, not read from the code: a new table must be placed in one list or the other.
TENANT_TABLES = {
    "agent_connections",
    "agent_events",
    "agents",
    "api_keys",
    "assignments",
    "audit_log",
    "conversations",
    "customers",
    "deadletters",
    "erasures",
    "identities",
    "merges",
    "messages",
    "queues",
    "routing_commands",
    "routing_profiles",
    "sla_timers",
    "suggestions",
    "surveys",
    "timeline",
    "webhook_deliveries",
}
# the tenants themselves, the relay's outbox (records on their way to Kafka, of any tenant), Alembic's own
OTHER_TABLES = {"tenants", "outbox", "alembic_version"}

T0 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A database of each dialect, migrated to the head from nothing."""
    async with empty_database(request.param, tmp_path, server_url(request.param, request)) as database:
        await upgrade(database)
        yield database


def server_url(dialect: str, request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("servers").database_url if dialect == "postgresql" else None


def keys_of(sync_conn: Any) -> dict[str, dict[str, Any]]:
    """Per table: its columns, primary key, unique keys (constraints and unique indexes) and foreign keys."""
    inspector = inspect(sync_conn)
    out = {}
    for table in inspector.get_table_names():
        uniques = [u["column_names"] for u in inspector.get_unique_constraints(table)]
        uniques += [i["column_names"] for i in inspector.get_indexes(table) if i["unique"]]
        out[table] = {
            "columns": [c["name"] for c in inspector.get_columns(table)],
            "pk": inspector.get_pk_constraint(table)["constrained_columns"],
            "uniques": uniques,
            "fks": [(f["constrained_columns"], f["referred_table"], f["referred_columns"]) for f in
                    inspector.get_foreign_keys(table)],
        }  # fmt: skip
    return out


async def test_tenant_id_leads_every_key_of_every_tenant_table(db: Database) -> None:
    async with db.engine.connect() as conn:
        schema = await conn.run_sync(keys_of)
    assert {name for name, keys in schema.items() if "tenant_id" in keys["columns"]} == TENANT_TABLES
    assert set(schema) == TENANT_TABLES | OTHER_TABLES
    wrong = []
    for name in sorted(TENANT_TABLES):
        keys = schema[name]
        if keys["pk"][:1] != ["tenant_id"] or len(keys["pk"]) < 2:
            wrong.append(f"{name}: primary key {keys['pk']}")
        wrong += [f"{name}: unique {u}" for u in keys["uniques"] if u[:1] != ["tenant_id"] or len(u) < 2]
        for columns, referred, referred_columns in keys["fks"]:
            if columns[:1] != ["tenant_id"]:
                wrong.append(f"{name}: reference {columns} to {referred}")
            # to another tenant table by its tenant and key; to the tenants by their id
            expected = ["id"] if referred == "tenants" else ["tenant_id", *referred_columns[1:]]
            if referred_columns != expected or (referred != "tenants" and len(columns) < 2):
                wrong.append(f"{name}: reference {columns} to {referred} {referred_columns}")
    assert wrong == []
    # the references the router relies on for cascades are all there, by tenant
    refs = {(name, tuple(c), r) for name in TENANT_TABLES for c, r, _ in schema[name]["fks"] if r != "tenants"}
    assert refs == {
        ("identities", ("tenant_id", "customer_id"), "customers"),
        ("conversations", ("tenant_id", "customer_id"), "customers"),
        ("messages", ("tenant_id", "conversation_id"), "conversations"),
        ("sla_timers", ("tenant_id", "conversation_id"), "conversations"),
        ("surveys", ("tenant_id", "conversation_id"), "conversations"),
        ("assignments", ("tenant_id", "conversation_id"), "conversations"),
        ("assignments", ("tenant_id", "agent_id"), "agents"),
    }


async def test_a_row_cannot_refer_to_another_tenants_row(db: Database) -> None:
    async with db.transaction() as conn:
        for tenant in ("ta", "tb"):
            await conn.execute(insert(t.tenants).values(id=tenant, name=tenant, created_at=T0))
        await conn.execute(insert(t.customers).values(id="cu", tenant_id="ta", created_at=T0))
        await conn.execute(_conversation("cv", "ta"))
    with pytest.raises(IntegrityError):  # tenant tb's conversation of tenant ta's customer
        async with db.transaction() as conn:
            await conn.execute(_conversation("cv2", "tb"))
    # the same ids in another tenant are another row
    async with db.transaction() as conn:
        await conn.execute(insert(t.customers).values(id="cu", tenant_id="tb", created_at=T0))
        await conn.execute(_conversation("cv", "tb"))
        await conn.execute(delete(t.customers).where(t.customers.c.tenant_id == "ta"))  # cascades in ta only
    async with db.read() as conn:
        left = (await conn.execute(select(t.conversations.c.tenant_id))).scalars().all()
    assert left == ["tb"]


async def test_rows_written_before_the_keys_changed_are_all_kept(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Migration 0021 on both dialects, with rows in every table it rebuilds: none lost (SQLite drops and
    rebuilds each table, which with its foreign keys on would delete rows by cascade), the references still
    cascade after it, and rows written after it continue the numbering."""
    for dialect in ("sqlite", "postgresql"):
        async with empty_database(dialect, tmp_path, server_url(dialect, request)) as database:
            await upgrade(database, "0020")
            await _fill(database)
            before = await _counts(database)
            await upgrade(database, "0021")  # (0023 moves running SLA clocks onto their conversations)
            assert await _counts(database) == before, dialect
            await upgrade(database)  # written as the router writes now
            async with database.transaction() as conn:
                await insert_rows(
                    conn, t.timeline, [dict(tenant_id="tn", customer_id="cu", kind="note", at=T0, data={})]
                )
                seqs = (await conn.execute(select(t.timeline.c.seq).order_by(t.timeline.c.seq))).scalars().all()
                assert seqs[-1] > seqs[0], dialect
                await conn.execute(delete(t.customers).where(t.customers.c.id == "cu"))
            after = await _counts(database)
            assert after["conversations"] == after["messages"] == after["sla_timers"] == 0, dialect
            assert after["assignments"] == after["identities"] == after["surveys"] == 0, dialect


async def _fill(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute(insert(t.tenants).values(id="tn", name="tn", created_at=T0))
        await conn.execute(insert(t.customers).values(id="cu", tenant_id="tn", created_at=T0))
        await conn.execute(
            insert(t.identities).values(
                id="id", tenant_id="tn", customer_id="cu", kind="phone", value="+1", created_at=T0
            )
        )
        await conn.execute(_conversation("cv", "tn"))
        await conn.execute(
            insert(t.agents).values(
                id="ag", tenant_id="tn", name="A", presence="online", capacity={}, queue_ids=[], created_at=T0
            )
        )
        await conn.execute(
            insert(t.messages).values(
                id="m1", tenant_id="tn", event_id="e1", conversation_id="cv", customer_id="cu", channel="sms",
                direction="inbound", sender_kind="customer", text="hi", received_at=T0, created_at=T0,
            )
        )  # fmt: skip
        await conn.execute(
            insert(t.timeline).values(tenant_id="tn", customer_id="cu", conversation_id="cv", kind="x", at=T0, data={})
        )
        await conn.execute(
            insert(t.assignments).values(
                id="as", tenant_id="tn", conversation_id="cv", agent_id="ag", queue_id="q", channel="sms",
                assigned_at=T0,
            )
        )  # fmt: skip
        await conn.execute(
            insert(t.sla_timers).values(
                id="sl", tenant_id="tn", conversation_id="cv", kind="first_response", target_s=60, started_at=T0,
                warn_at=T0, due_at=T0,
            )
        )  # fmt: skip
        await conn.execute(
            insert(t.surveys).values(
                id="sv", tenant_id="tn", conversation_id="cv", customer_id="cu", kind="csat", channel="sms",
                token="tok", sent_at=T0,
            )
        )  # fmt: skip
        await conn.execute(
            insert(t.agent_events).values(id="ev", tenant_id="tn", agent_id="ag", type="assigned", data={}, at=T0)
        )


def _conversation(conversation_id: str, tenant_id: str) -> Any:
    """An open SMS conversation of customer ``cu`` in the tenant."""
    return insert(t.conversations).values(
        id=conversation_id, tenant_id=tenant_id, customer_id="cu", status="open", channel="sms", opened_at=T0,
        last_message_at=T0,
    )  # fmt: skip


async def _counts(db: Database) -> dict[str, int]:
    names = ("customers", "identities", "conversations", "agents", "messages", "timeline", "assignments",
             "sla_timers", "surveys", "agent_events")  # fmt: skip
    async with db.read() as conn:
        return {
            n: (await conn.execute(select(func.count()).select_from(t.metadata.tables[n]))).scalar_one() for n in names
        }
