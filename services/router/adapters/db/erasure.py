"""GDPR erasure and retention, in PostgreSQL (or the embedded store).

Erasing a customer removes their identities and irreversibly blanks every personal field: profile (name,
email, phone, language, tags, consent, attributes), message texts, subjects, attachments and channel
references, feed events, survey comments, timeline details, merge records, suggestions, resolution notes, and
deletes the tenant's dead letters that mention any of their identifiers.
Rows stay (without personal data) so that counts and KPIs still add up, and so that messages keep their event
ids: an event replayed from Kafka is a known duplicate and is dropped. Events that never became a message
(e.g. call statuses) are stopped by ``erasures``: keyed hashes (HMAC-SHA256) of the erased identifiers with the
time of erasure; anything from them received before that time is dropped by the context stage.

Retention: messages of conversations closed longer than ``SWITCHBOARD_RETENTION_DAYS`` are blanked the same
way (the customer's profile stays; it is erased on request)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import String, Table, cast, delete, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.adapters.db import deadletters
from services.router.adapters.db import tables as t
from services.router.adapters.db.keyed import Keyed
from services.router.adapters.db.statements import key_in

ERASED = "[erased]"
# What stays of an erased message: its ids, channel, direction and times (counts and KPIs), nothing personal. An
# acknowledgement keeps its "acknowledged" entry (``note_seq``), whose data is blanked with its promise.
BLANK_MESSAGE: dict[str, Any] = dict(
    text=ERASED,
    subject=None,
    attachments=[],
    channel_message_id=None,
    thread_ref=None,
    error=None,
    sanitized=None,
    acknowledgement=None,
)
DEFAULT_KEY = b"switchboard-erasure"
_er = t.erasures.c
_ERASED = Keyed(select(_er.digest, _er.erased_at), tuple_(_er.tenant_id, _er.digest))  # every batch asks


def identity_digest(key: bytes, tenant_id: str, kind: str, value: str) -> str:
    return hmac.new(key, f"{tenant_id}\x1f{kind}\x1f{value}".encode(), hashlib.sha256).hexdigest()


async def customer_family(conn: AsyncConnection, tenant_id: str, customer_id: str) -> list[str]:
    """The customer and every customer merged into them (their tombstones hold history too)."""
    c = t.customers.c
    family, frontier = [customer_id], [customer_id]
    while frontier:
        rows = await conn.execute(select(c.id).where(c.tenant_id == tenant_id, c.merged_into.in_(frontier)))
        frontier = [r.id for r in rows if r.id not in family]
        family += frontier
    return family


def _of_conversations(
    conn: AsyncConnection, table: Table, keys: list[tuple[str, str]], column: str = "conversation_id"
) -> Any:
    """The rows of ``table`` of these (tenant, conversation id) pairs, found by the tenant's keys."""
    return key_in(conn, tuple_(table.c.tenant_id, table.c[column]), keys)


async def blank_conversations(conn: AsyncConnection, keys: list[tuple[str, str]], now: datetime) -> None:
    """Every personal field of these (tenant, conversation id)'s messages, feed events, surveys and timeline
    entries."""
    if not keys:
        return
    await conn.execute(update(t.messages).where(_of_conversations(conn, t.messages, keys)).values(**BLANK_MESSAGE))
    await conn.execute(update(t.agent_events).where(_of_conversations(conn, t.agent_events, keys)).values(data={}))
    await conn.execute(update(t.surveys).where(_of_conversations(conn, t.surveys, keys)).values(comment=None))
    await conn.execute(update(t.timeline).where(_of_conversations(conn, t.timeline, keys)).values(data={}))
    # webhook events still held for their receivers carry the messages' text: they are not sent any more
    await conn.execute(delete(t.webhook_deliveries).where(_of_conversations(conn, t.webhook_deliveries, keys)))
    await conn.execute(
        update(t.conversations)
        .where(_of_conversations(conn, t.conversations, keys, "id"))
        .values(resolution_note=None, erased_at=now)
    )


async def erase_customer(
    conn: AsyncConnection, tenant_id: str, customer_id: str, key: bytes, now: datetime
) -> dict[str, Any] | None:
    """Erase; None if the tenant has no such customer. Returns what was erased (counts and ids only)."""
    cu = t.customers.c
    found = (await conn.execute(select(cu.id).where(cu.tenant_id == tenant_id, cu.id == customer_id))).first()
    if found is None:
        return None
    family = await customer_family(conn, tenant_id, customer_id)
    i = t.identities.c
    of_family = i.tenant_id == tenant_id, i.customer_id.in_(family)
    identities = (await conn.execute(select(i.kind, i.value).where(*of_family))).all()
    known = {(r.kind, r.value) for r in identities}
    profile = (await conn.execute(select(cu.email, cu.phone).where(cu.tenant_id == tenant_id, cu.id.in_(family)))).all()
    known |= {("email", r.email) for r in profile if r.email} | {("phone", r.phone) for r in profile if r.phone}
    digests = {identity_digest(key, tenant_id, kind, value) for kind, value in known}
    er = t.erasures.c
    await conn.execute(delete(t.erasures).where(er.tenant_id == tenant_id, er.digest.in_(digests)))
    if digests:
        await conn.execute(
            t.erasures.insert(), [{"tenant_id": tenant_id, "digest": d, "erased_at": now} for d in sorted(digests)]
        )
    c = t.conversations.c
    conversations = [
        r.id for r in await conn.execute(select(c.id).where(c.tenant_id == tenant_id, c.customer_id.in_(family)))
    ]
    attachments = await _attachments_only_of(conn, tenant_id, family)
    await blank_conversations(conn, [(tenant_id, cid) for cid in conversations], now)
    m, sv, tl = t.messages.c, t.surveys.c, t.timeline.c
    await conn.execute(
        update(t.messages).where(m.tenant_id == tenant_id, m.customer_id.in_(family)).values(**BLANK_MESSAGE)
    )
    await conn.execute(
        update(t.surveys).where(sv.tenant_id == tenant_id, sv.customer_id.in_(family)).values(comment=None)
    )
    await conn.execute(update(t.timeline).where(tl.tenant_id == tenant_id, tl.customer_id.in_(family)).values(data={}))
    await deadletters.forget_mentioning(conn, tenant_id, sorted(value for _, value in known))
    await conn.execute(delete(t.identities).where(*of_family))
    sg = t.suggestions.c
    await conn.execute(
        delete(t.suggestions).where(
            sg.tenant_id == tenant_id, or_(sg.customer_id.in_(family), sg.other_customer_id.in_(family))
        )
    )
    mg = t.merges.c
    await conn.execute(
        update(t.merges)
        .where(mg.tenant_id == tenant_id, or_(mg.survivor_id.in_(family), mg.merged_id.in_(family)))
        .values(record={})
    )
    await conn.execute(
        update(t.customers)
        .where(cu.tenant_id == tenant_id, cu.id.in_(family))
        .values(name=None, email=None, phone=None, language=None, tags=[], consent={}, attributes={}, erased_at=now)
    )
    return {
        "customer_id": customer_id,
        "customers": family,
        "conversations": len(conversations),
        "attachments": sorted(attachments),
        "erased_at": now,
    }


async def _attachments_only_of(conn: AsyncConnection, tenant_id: str, family: list[str]) -> set[str]:
    """Blob references of the customer's attachments that no one else's message shares (blobs are
    content-addressed): the connectors that store them delete them on ``customer.erased``."""
    m = t.messages.c
    refs = {
        str(a["ref"])
        for row in await conn.execute(select(m.attachments).where(m.tenant_id == tenant_id, m.customer_id.in_(family)))
        for a in row.attachments or []
        if isinstance(a, dict) and a.get("ref")
    }
    shared = set()
    for ref in refs:
        others = select(m.id).where(
            m.tenant_id == tenant_id, m.customer_id.not_in(family), cast(m.attachments, String).contains(ref)
        )
        if (await conn.execute(others.limit(1))).first() is not None:
            shared.add(ref)
    return refs - shared


async def erased_senders(
    conn: AsyncConnection, key: bytes, senders: Iterable[tuple[str, str, str]]
) -> dict[tuple[str, str, str], datetime]:
    """(tenant, kind, value) → when it was erased, for those that were."""
    by_digest = {identity_digest(key, *s): s for s in set(senders)}
    if not by_digest:
        return {}
    wanted = [(sender[0], digest) for digest, sender in by_digest.items()]
    return {by_digest[r.digest]: r.erased_at for r in await _ERASED.run(conn, wanted)}


async def apply_retention(conn: AsyncConnection, cutoff: datetime, now: datetime, batch: int = 500) -> int:
    """Blank up to ``batch`` conversations closed before ``cutoff``, of every tenant; returns how many."""
    c = t.conversations.c
    keys = [
        (r.tenant_id, r.id)
        for r in await conn.execute(
            select(c.tenant_id, c.id)
            .where(c.status != "open", c.resolved_at < cutoff, c.erased_at.is_(None))
            .order_by(c.resolved_at)
            .limit(batch)
        )
    ]
    await blank_conversations(conn, keys, now)
    return len(keys)
