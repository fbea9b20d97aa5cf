"""GDPR erasure on real PostgreSQL and Kafka: after DELETE /v1/customers/{id}, no table holds the customer's
identifiers or texts, and a router replaying every topic from the beginning does not bring them back.
Retention: closed conversations older than SWITCHBOARD_RETENTION_DAYS are blanked by the router's own timer."""

from __future__ import annotations

import asyncio
import secrets
import smtplib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, text

from services.router.adapters.db import tables as t
from services.router.bootstrap import build_router
from shared.events import Channel, Claim, IdentityKind
from shared.routing_commands import Resolve
from shared.store import Database
from tests.conftest import Servers, random_name
from tests.support.databases import public_tables
from tests.support.http import http_client
from tests.support.runtime import (
    conversation_of,
    inbound,
    publish,
    serving,
    settings_for,
    started_desk,
    texted,
    wait_for,
)
from tests.support.system import system


async def tables_containing(db: Database, needles: list[str]) -> dict[str, list[str]]:
    """Every table of the database, every row as text: which hold which needle."""
    found: dict[str, list[str]] = {}
    async with db.read() as conn:
        for name in await public_tables(conn, views=True):
            for needle in needles:
                hit = await conn.execute(
                    text(f'SELECT 1 FROM "{name}" AS r WHERE position(:n in CAST(r AS text)) > 0 LIMIT 1'),
                    {"n": needle},
                )
                if hit.first() is not None:
                    found.setdefault(name, []).append(needle)
    return found


async def test_erased_customers_are_gone_from_every_table_and_a_kafka_replay_does_not_restore_them(
    servers: Servers, tmp_path: Path
) -> None:
    tag = secrets.token_hex(4)
    email = f"zed.{tag}@example.org"
    phone = f"+4477009{int(tag, 16) % 100000:05d}"
    name = f"Zed {tag}"
    texts = [f"my card {tag} was charged twice", f"still waiting {tag}", f"thanks {tag}"]
    settings = settings_for("production", tmp_path, servers)
    async with started_desk(settings) as desk:
        vouched = Claim(kind=IdentityKind.EMAIL, value=email, verified=True)
        first = texted(desk.tenant, phone, texts[0], claims=(vouched,), name=name)
        await publish(desk, first)
        conv = await wait_for(lambda: conversation_of(desk, first.id))
        second = texted(desk.tenant, phone, texts[1])
        third = inbound(desk.tenant, email, texts[2], channel=Channel.EMAIL, kind=IdentityKind.EMAIL, verified=True)
        await publish(desk, second, third)
        await wait_for(lambda: conversation_of(desk, third.id))
        reply = f"refund {tag} is on its way"
        note = f"refunded {tag}"
        async with (
            serving(desk.router) as base,
            httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {desk.key}"}, timeout=30) as http,
        ):
            assert (await http.post(f"/v1/conversations/{conv['id']}/reply", json={"text": reply})).status_code == 202
            patched = await http.patch(f"/v1/customers/{conv['customer_id']}", json={"attributes": {"vip": tag}})
            assert patched.status_code == 200
            needles = [email, phone, name, reply, *texts, tag]
            exported = await http.get(f"/v1/customers/{conv['customer_id']}/export")
            assert all(n in exported.text for n in needles if n != note), "the export holds everything"
            before = await tables_containing(desk.router.db, needles)
            assert "messages" in before and "identities" in before  # the scan does see them

            erased = await http.delete(f"/v1/customers/{conv['customer_id']}")
            assert erased.status_code == 200, erased.text
            assert erased.json()["conversations"] >= 1
            after = await http.get(f"/v1/customers/{conv['customer_id']}")
            assert after.status_code == 200 and after.json()["name"] is None
            assert (await http.get(f"/v1/conversations/{conv['id']}")).json()["status"] == "resolved"
        assert await tables_containing(desk.router.db, needles) == {}

        # another router, a new consumer group: every topic from the beginning, events and commands alike
        replayer = build_router(settings.model_copy(update={"consumer_group": settings.consumer_group + "-replay"}))
        handled: list[int] = []
        handle = replayer.stage.handle

        async def counting(records: Any) -> Any:
            result = await handle(records)
            handled.append(len(records))
            return result

        replayer.stage.handle = counting  # type: ignore[method-assign]
        await replayer.start()
        try:
            async with asyncio.timeout(30):
                while sum(handled) < 3:  # the customer's three events, at least, came back
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1)
        finally:
            await replayer.stop()
        assert await tables_containing(desk.router.db, needles) == {}
        async with desk.router.repo.reader() as conn:
            c = t.customers.c
            alive = (await conn.execute(select(c.id).where(c.tenant_id == desk.tenant, c.erased_at.is_(None)))).all()
        assert alive == [], "no customer re-created from old events"

        # the customer writes again later: a fresh start, not the erased history
        later = inbound(desk.tenant, phone, f"hello again {tag}", channel=Channel.SMS, kind=IdentityKind.PHONE)
        await publish(desk, later)
        fresh = await wait_for(lambda: conversation_of(desk, later.id))
        assert fresh["customer_id"] != conv["customer_id"]
        # consumers downstream hear of it: ids only
        consumer = await desk.bus.subscribe([desk.router.topics.customers], random_name("g-"))
        seen: list[bytes] = []
        async with asyncio.timeout(20):
            while not any(b"customer.erased" in v for v in seen):
                seen += [r.value for r in await consumer.getmany(0.2, 100)]
        await consumer.close()
        assert not any(n.encode() in v for v in seen for n in needles)


async def test_retention_blanks_closed_conversations_older_than_the_setting(tmp_path: Path) -> None:
    settings = settings_for("embedded", tmp_path, retention_days=1 / 86_400, routing_sweep_s=0.2)  # one second
    async with started_desk(settings) as desk:
        old = inbound(desk.tenant, "retained", "an old problem")
        kept = inbound(desk.tenant, "open-one", "a current problem")
        await publish(desk, old, kept)
        conv = await wait_for(lambda: conversation_of(desk, old.id))
        current = await wait_for(lambda: conversation_of(desk, kept.id))
        await desk.router.commands.run(desk.tenant, Resolve(conversation_id=conv["id"], note="sorted"))

        async def texts(conversation_id: str) -> list[str]:
            async with desk.router.repo.reader() as conn:
                m = t.messages.c
                return [r.text for r in await conn.execute(select(m.text).where(m.conversation_id == conversation_id))]

        async def blanked() -> bool:
            gone = await texts(conv["id"])  # the customer's message and the survey sent on resolve
            return bool(gone) and set(gone) == {"[erased]"}

        await wait_for(blanked, timeout_s=15)
        kept = await texts(current["id"])  # the customer's message, and the desk's acknowledgement of it
        assert "a current problem" in kept and "[erased]" not in kept, "open conversations are kept"
        async with desk.router.repo.reader() as conn:
            c = t.conversations.c
            row = (await conn.execute(select(c.erased_at, c.resolution_note).where(c.id == conv["id"]))).one()
        assert row.erased_at is not None and row.erased_at <= datetime.now(UTC) and row.resolution_note is None


async def test_an_erased_customers_email_attachments_are_deleted_by_the_email_connector(tmp_path: Path) -> None:
    raw = (Path(__file__).parent.parent / "unit" / "emails" / "10_attachment.eml").read_bytes()
    async with system("embedded", tmp_path, names=("email",)) as s:
        await asyncio.to_thread(_smtp_send_raw, s.settings.smtp_port, raw)
        conv = await wait_for(
            lambda: conversation_of(s.desk, s.connectors.event_id(Channel.EMAIL, "<att-10@mail.example.com>"))
        )
        refs = [a["ref"] for m in conv["messages"] for a in m["attachments"]]
        blobs = [tmp_path / "blobs" / r.removeprefix("blob:sha256:")[:2] / r.removeprefix("blob:sha256:") for r in refs]
        assert len(blobs) >= 2 and all(b.exists() for b in blobs)  # the two files (and the raw mail)
        async with (
            serving(s.desk.router) as base,
            http_client(base_url=base, headers={"Authorization": f"Bearer {s.desk.key}"}) as http,
        ):
            erased = await http.delete(f"/v1/customers/{conv['customer_id']}")
        assert erased.status_code == 200 and sorted(erased.json()["attachments"]) == sorted(refs)

        async def gone() -> bool:
            return not any(b.exists() for b in blobs)

        await wait_for(gone)


def _smtp_send_raw(port: int, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.sendmail("sam@example.com", ["support@acme.test"], raw)
