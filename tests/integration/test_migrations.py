"""The Alembic migrations produce exactly the schema tables.py describes, on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, select, text

from services.router.adapters.db import tables as t
from services.router.adapters.db.bulk import insert_rows
from services.router.adapters.db.migrate import upgrade
from services.router.adapters.db.tables import metadata
from services.router.adapters.views import timeline as timelines
from shared.store import Database
from tests.conftest import Servers
from tests.support.databases import empty_database


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


async def test_the_tables_updated_on_the_hot_path_keep_room_on_their_pages(servers: Servers, tmp_path: Path) -> None:
    """Migration 0025: PostgreSQL fills the pages of the tables updated by nearly every event to 80 %, so their
    updates can stay on the row's page (HOT); the others are filled whole, as by default. Also what a table
    created from tables.py gets."""
    expected = {"conversations": ["fillfactor=80"], "assignments": ["fillfactor=80"], "customers": ["fillfactor=80"]}
    async with empty_database("postgresql", tmp_path, servers.database_url) as db:
        await upgrade(db)
        async with db.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT relname, reloptions FROM pg_class WHERE relkind = 'r'"))).all()
    options = {name: opts for name, opts in rows if name in metadata.tables}
    assert {name: opts for name, opts in options.items() if opts} == expected
    assert {name: t.metadata.tables[name].dialect_options["postgresql"]["with"] for name in expected} == {
        name: {"fillfactor": 80} for name in expected
    }


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
async def test_a_timeline_written_before_messages_were_their_own_entries_reads_the_same_after(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Migration 0019: messages had their own numbering and a copy of kind ``message`` on the timeline. After it,
    the customer's timeline lists the same entries with the same seq, and what is written next comes after."""
    async with customer_at("0018", dialect, tmp_path, request) as db:
        async with db.transaction() as conn:
            await conn.execute(
                insert(t.conversations).values(
                    id="cv", tenant_id="tn", customer_id="cu", status="open", channel="sms", opened_at=T0,
                    last_message_at=T0,
                )
            )  # fmt: skip
            # as the router wrote them then: the message (its own numbering), then its copy; m2's redelivery
            # raced the first and left a second copy (the message itself is stored once)
            stored: set[str] = set()
            for kind, message in [("opened", None), ("message", "m1"), ("message", "m2"), ("message", "m2"),
                                  ("assigned", None), ("message", "m3"), ("resolved", None)]:  # fmt: skip
                if message and message not in stored:
                    await conn.execute(insert(t.messages).values(**_message(message)))
                    stored.add(message)
                await conn.execute(
                    insert(t.timeline).values(
                        tenant_id="tn", customer_id="cu", conversation_id="cv", kind=kind, message_id=message,
                        channel="sms", at=T0, data={},
                    )
                )  # fmt: skip
        await upgrade(db)
        async with db.transaction() as conn:  # written the way the router writes now
            await insert_rows(conn, t.messages, [_message("m4")])
            await insert_rows(
                conn,
                t.timeline,
                [dict(tenant_id="tn", customer_id="cu", conversation_id="cv", kind="reopened", at=T0, data={})],
            )
        async with db.read() as conn:
            page = await timelines.timeline(conn, "tn", "cu", None, 50)
            older = await timelines.timeline(conn, "tn", "cu", 6, 2)
    listed = [(e["seq"], e["kind"], e.get("message_id"), e.get("text")) for e in page]
    assert listed == [
        (9, "reopened", None, None),
        (8, "message", "m4", "text of m4"),
        (7, "resolved", None, None),
        (6, "message", "m3", "text of m3"),
        (5, "assigned", None, None),
        (3, "message", "m2", "text of m2"),  # in its first copy's place, listed once
        (2, "message", "m1", "text of m1"),
        (1, "opened", None, None),
    ]
    assert [(e["seq"], e["kind"]) for e in older] == [(5, "assigned"), (3, "message")]


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
async def test_conversations_take_the_place_of_their_opened_entries(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Migration 0020: each conversation had an "opened" row in ``timeline``. After it, the customer's timeline
    lists the same entries with the same seq and data (the channel it started on, not where it is now), a
    conversation without an entry still has none, and what is written next comes after."""
    async with customer_at("0019", dialect, tmp_path, request) as db:
        async with db.transaction() as conn:
            made = [("cv1", "whatsapp", "resolved"), ("cv2", "email", "open"), ("cv0", "sms", "resolved")]
            for cid, channel, status in made:
                await conn.execute(
                    insert(t.conversations).values(
                        id=cid, tenant_id="tn", customer_id="cu", status=status, channel=channel, opened_at=T0,
                        last_message_at=T0,
                    )
                )  # fmt: skip
            # cv1 opened on SMS and moved to WhatsApp since; cv2's batch raced itself and left two entries
            for kind, cid, data in [("opened", "cv1", {"channel": "sms"}), ("assigned", "cv1", {"agent_id": "a"}),
                                    ("resolved", "cv1", {}), ("opened", "cv2", {"channel": "email"}),
                                    ("opened", "cv2", {"channel": "email"})]:  # fmt: skip
                await conn.execute(
                    insert(t.timeline).values(
                        tenant_id="tn", customer_id="cu", conversation_id=cid, kind=kind, at=T0, data=data
                    )
                )
        await upgrade(db)
        async with db.transaction() as conn:  # written the way the router writes now
            await insert_rows(
                conn,
                t.conversations,
                [dict(id="cv3", tenant_id="tn", customer_id="cu", status="resolved", channel="chat",
                      opened_channel="chat", opened_at=T0, last_message_at=T0)],
            )  # fmt: skip
        async with db.read() as conn:
            page = await timelines.timeline(conn, "tn", "cu", None, 50)
            left = (await conn.execute(select(t.timeline.c.kind).where(t.timeline.c.kind == "opened"))).all()
            cv0 = (await conn.execute(select(t.conversations.c.seq).where(t.conversations.c.id == "cv0"))).scalar()
    newest, *rest = page
    assert (newest["kind"], newest["conversation_id"], newest["data"]) == ("opened", "cv3", {"channel": "chat"})
    assert newest["seq"] > 4  # after every entry (on SQLite the number of the duplicate that went is free again)
    assert [(e["seq"], e["kind"], e["conversation_id"], e["data"]) for e in rest] == [
        (4, "opened", "cv2", {"channel": "email"}),  # in its first entry's place, listed once
        (3, "resolved", "cv1", {}),
        (2, "assigned", "cv1", {"agent_id": "a"}),
        (1, "opened", "cv1", {"channel": "sms"}),
    ]
    assert left == [] and cv0 is None


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
async def test_acknowledgements_take_the_place_of_their_acknowledged_entries(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Migration 0024: each acknowledgement had an "acknowledged" row in ``timeline``. After it, the customer's
    timeline lists the same entries with the same seq and data: one whose data erasure blanked (its message found
    by its key, the data no longer names it) stays blank, a second entry of a batch that raced itself goes, and
    one whose message is gone stays as it was; what is written next comes after, an acknowledgement's entry after
    its message."""
    promise = {"language": "de", "promised_at": "2026-11-02T10:00:00+00:00", "opens_at": None}
    data = {"message_id": "a1", "channel": "email", **promise, "expected_wait_s": 42.5, "queue_id": "q1"}
    async with customer_at("0023", dialect, tmp_path, request) as db:
        async with db.transaction() as conn:
            # numbered by hand: at 0022 neither the sequence's default (timeline) nor the store numbers them
            for seq, cid, status in [(1, "cv1", "resolved"), (6, "cv2", "resolved"), (10, "cv3", "open")]:
                await conn.execute(
                    insert(t.conversations).values(
                        seq=seq, id=cid, tenant_id="tn", customer_id="cu", status=status, channel="email",
                        opened_channel="email", opened_at=T0, last_message_at=T0,
                    )
                )  # fmt: skip
            said = [(2, "m1", "cv1", None), (3, "a1", "cv1", "cv1"), (7, "m2", "cv2", None), (8, "a2", "cv2", "cv2")]
            for seq, mid, cid, acknowledged in said:
                key = dict(event_id=f"acknowledgement:{acknowledged}", direction="outbound", sender_kind="system")
                row = {**_message(mid), "seq": seq, "conversation_id": cid, "channel": "email"}
                await conn.execute(insert(t.messages).values({**row, **(key if acknowledged else {})}))
            # cv2's was erased ({}); cv1's batch raced itself (a second entry, 9); cv3's message is gone (11)
            for seq, kind, cid, entry in [(4, "acknowledged", "cv1", data), (5, "assigned", "cv1", {"agent_id": "x"}),
                                          (9, "acknowledged", "cv1", data), (12, "acknowledged", "cv2", {}),
                                          (11, "acknowledged", "cv3", {**data, "message_id": "a3"})]:  # fmt: skip
                await conn.execute(
                    insert(t.timeline).values(
                        seq=seq, tenant_id="tn", customer_id="cu", conversation_id=cid, kind=kind, at=T0, data=entry
                    )
                )
            if dialect == "postgresql":
                await conn.execute(text("SELECT setval('timeline_seq_seq', 12)"))
        await upgrade(db)
        async with db.read() as conn:
            after = await timelines.timeline(conn, "tn", "cu", None, 50)
            left = (await conn.execute(select(t.timeline.c.seq).where(t.timeline.c.kind == "acknowledged"))).all()
        async with db.transaction() as conn:  # written the way the router writes now
            await insert_rows(
                conn, t.messages, [{**_message("a4"), "conversation_id": "cv3", "acknowledgement": promise}]
            )
            await insert_rows(
                conn,
                t.timeline,
                [dict(tenant_id="tn", customer_id="cu", conversation_id="cv3", kind="resolved", at=T0, data={})],
            )
        async with db.read() as conn:
            newest = await timelines.timeline(conn, "tn", "cu", None, 3)
            older = await timelines.timeline(conn, "tn", "cu", 5, 2)
    listed = [(e["seq"], e["kind"], e["conversation_id"], e["at"], e.get("data", e.get("message_id"))) for e in after]
    assert listed == [
        (12, "acknowledged", "cv2", T0, {}),  # erased: blank as it was
        (11, "acknowledged", "cv3", T0, {**data, "message_id": "a3"}),  # its message is gone: the stored entry
        (10, "opened", "cv3", T0, {"channel": "email"}),
        (8, "message", "cv2", T0, "a2"),
        (7, "message", "cv2", T0, "m2"),
        (6, "opened", "cv2", T0, {"channel": "email"}),
        (5, "assigned", "cv1", T0, {"agent_id": "x"}),
        (4, "acknowledged", "cv1", T0, data),  # in its first entry's place, listed once
        (3, "message", "cv1", T0, "a1"),
        (2, "message", "cv1", T0, "m1"),
        (1, "opened", "cv1", T0, {"channel": "email"}),
    ]
    assert left == [(11,)]
    assert [(e["seq"], e["kind"], e.get("message_id")) for e in newest] == [
        (15, "resolved", None),
        (14, "acknowledged", None),
        (13, "message", "a4"),
    ]
    assert newest[1]["data"] == {"message_id": "a4", "channel": "sms", **promise}
    assert [(e["seq"], e["kind"]) for e in older] == [(4, "acknowledged"), (3, "message")]


@asynccontextmanager
async def customer_at(
    revision: str, dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Database]:
    """A database of ``dialect`` at ``revision``, holding tenant ``tn`` and its customer ``cu``; dropped after."""
    server = request.getfixturevalue("servers").database_url if dialect == "postgresql" else None
    async with empty_database(dialect, tmp_path, server) as db:
        await upgrade(db, revision)
        async with db.transaction() as conn:
            await conn.execute(insert(t.tenants).values(id="tn", name="tn", created_at=T0))
            await conn.execute(insert(t.customers).values(id="cu", tenant_id="tn", created_at=T0))
        yield db


T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _message(message_id: str) -> dict[str, Any]:
    return dict(
        id=message_id, tenant_id="tn", event_id=f"ev-{message_id}", conversation_id="cv", customer_id="cu",
        channel="sms", direction="inbound", sender_kind="phone", text=f"text of {message_id}", received_at=T0,
        created_at=T0,
    )  # fmt: skip
