"""GDPR erasure reaches binary columns too. Records bound for or taken from Kafka are kept as bytes (bytea): the
outbox (what a transaction decided to publish, until the relay sends it), dead letters (the original record),
webhook deliveries (the body as signed). Read as text, PostgreSQL shows bytea as hex, so a scan of rows cast
to text (test_erasure.py) never finds a name or a message in them. Here every column of every table of a
database of the test's own is read and bytes are decoded (UTF-8, and JSON with its escapes undone) before
looking for the customer's name, email, phone and texts."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text

from shared.bus import Outgoing
from shared.events import Channel, Claim, IdentityKind, encode_event
from shared.store import Database
from tests.conftest import Servers, random_name
from tests.support.databases import create_database, drop_database, public_tables
from tests.support.runtime import (
    Desk,
    arrive,
    free_port,
    inbound,
    serving,
    settings_for,
    started_desk,
    texted,
    wait_for,
)


def readable(value: Any) -> str:
    """A column's value as text a person would read: bytes decoded as UTF-8, JSON (in bytes or text) with its
    escapes (``\\u00eb``, ``\\/``) undone."""
    if value is None:
        return ""
    if isinstance(value, memoryview):
        value = bytes(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        return value + "\n" + json.dumps(parsed, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, default=str)


async def personal_data_in(db: Database, needles: list[str]) -> dict[str, set[str]]:
    """Every row of every table: ``table.column`` → the needles found there."""
    found: dict[str, set[str]] = {}
    async with db.read() as conn:
        tables = await public_tables(conn)
        assert {"outbox", "deadletters", "webhook_deliveries", "messages"} <= set(tables)
        for table in tables:
            rows = await conn.execute(text(f'SELECT * FROM "{table}"'))
            columns = list(rows.keys())
            for row in rows:
                for column, value in zip(columns, row, strict=True):
                    seen = readable(value)
                    for needle in needles:
                        if needle in seen:
                            found.setdefault(f"{table}.{column}", set()).add(needle)
    return found


@pytest.fixture
async def own_database(servers: Servers) -> AsyncIterator[str]:
    """A database of this test's own: every row in it is this test's, so every row can be read."""
    url = await create_database(servers.database_url, random_name("switchboard_test_"))
    try:
        yield url
    finally:
        await drop_database(url)


async def test_erasure_leaves_no_personal_data_in_binary_columns(
    servers: Servers, own_database: str, tmp_path: Path
) -> None:
    tag = secrets.token_hex(4)
    name = f"Zoë Ångström {tag}"  # not ASCII: a JSON encoder may escape it
    email = f"zoe.{tag}@example.org"
    phone = f"+4477009{int(tag, 16) % 100000:05d}"
    said = f"my card ending {tag} was charged twice"
    mailed = f"the receipt for {tag} is attached"
    poison = f"Zoë's message {tag} that no router could read"
    reply = f"Dear Zoë, refund {tag} is on its way"
    needles = [name, email, phone, said, mailed, poison, reply, tag]

    settings = settings_for(
        "production",
        tmp_path,
        servers,
        database_url=own_database,
        webhook_urls=f"http://127.0.0.1:{free_port()}/hook",  # nobody listens: deliveries stay queued
        webhook_secret="erasure-binary-webhook-secret",
    )
    async with started_desk(settings) as desk:
        vouched = Claim(kind=IdentityKind.EMAIL, value=email, verified=True)
        conv = await arrive(desk, texted(desk.tenant, phone, said, claims=(vouched,), name=name))
        # her mail client writes her address with capitals, as many do; it is the same identity
        mixed = f"Zoe.{tag.upper()}@Example.org"
        await arrive(
            desk, inbound(desk.tenant, mixed, mailed, channel=Channel.EMAIL, kind=IdentityKind.EMAIL, name=name)
        )
        # a record of hers that no router could read (a newer connector's schema): dead-lettered as it came
        unreadable = orjson.loads(
            encode_event(inbound(desk.tenant, mixed, poison, channel=Channel.EMAIL, kind=IdentityKind.EMAIL, name=name))
        )
        unreadable["schema_version"] = 99
        await publish_raw(desk, orjson.dumps(unreadable))
        await wait_for(lambda: _in_column(desk, needles, "deadletters.value", poison))
        await wait_for(lambda: _in_column(desk, needles, "webhook_deliveries.body", mailed))  # routing events

        async with (
            serving(desk.router) as base,
            httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {desk.key}"}, timeout=30) as http,
        ):
            # the conversation is closed first: erasure then has nothing to resolve (resolving flushes the outbox
            # on its own), what it does to the outbox is all its own
            done = await http.post(f"/v1/conversations/{conv['id']}/resolve", json={"survey": "none"})
            assert done.status_code == 204, done.text
            # the agent's follow-up reply is committed, but the process cannot reach Kafka for now (or died before its
            # flush): the OutboundMessage, her text and address, waits in the outbox
            relay = desk.router.relay
            flush = relay.flush

            async def unreachable() -> int:
                return 0

            relay.flush = unreachable  # type: ignore[method-assign]
            try:
                r = await http.post(f"/v1/conversations/{conv['id']}/reply", json={"text": reply})
                assert r.status_code == 202, r.text
                before = await personal_data_in(desk.router.db, needles)
            finally:
                relay.flush = flush  # type: ignore[method-assign]
            # the scan does see bytes: her reply in the outbox, her record among the dead letters, her
            # messages in the webhook bodies; and the text columns as well
            assert reply in before.get("outbox.value", set()), before
            assert poison in before.get("deadletters.value", set()), before
            assert mailed in before.get("webhook_deliveries.body", set()), before
            assert name in before.get("customers.name", set()) and said in before.get("messages.text", set())

            erased = await http.delete(f"/v1/customers/{conv['customer_id']}")
            assert erased.status_code == 200, erased.text

        left = await personal_data_in(desk.router.db, needles)
        assert left == {}, f"personal data left after erasure: {left}"


async def publish_raw(desk: Desk, value: bytes) -> None:
    """A record on the events topic as a connector would produce it (keyed by the tenant)."""
    await desk.bus.publish([Outgoing(desk.router.topics.events, value, desk.tenant.encode())])


async def _in_column(desk: Desk, needles: list[str], column: str, needle: str) -> bool:
    return needle in (await personal_data_in(desk.router.db, needles)).get(column, set())
