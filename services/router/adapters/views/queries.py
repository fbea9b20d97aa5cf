"""Read models for the API: what was stored, always filtered by tenant (a foreign id reads as unknown)."""

from __future__ import annotations

import statistics
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    func,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.adapters.db import tables as t
from services.router.adapters.views.timeline import acknowledged_data, opened_data
from services.router.domain import whatsapp_window
from shared.events import IdentityKind


def _row(r: Any) -> dict[str, Any]:
    return dict(r._mapping)


CUSTOMER_FIELDS = (
    "id",
    "name",
    "email",
    "phone",
    "language",
    "language_confidence",
    "tier",
    "tags",
    "consent",
    "attributes",
    "owner_agent_id",
    "merged_into",
    "created_at",
    "updated_at",
)


async def customer(conn: AsyncConnection, tenant_id: str, customer_id: str) -> dict[str, Any] | None:
    """Everything an agent needs to know who this is: profile, identities, conversations, the agents who
    helped most recently, and suggested duplicates."""
    c = t.customers.c
    row = (
        await conn.execute(
            select(*(getattr(c, f) for f in CUSTOMER_FIELDS)).where(c.tenant_id == tenant_id, c.id == customer_id)
        )
    ).first()
    if row is None:
        return None
    i = t.identities.c
    ids = await conn.execute(
        select(i.kind, i.value, i.verified, i.created_at)
        .where(i.tenant_id == tenant_id, i.customer_id == customer_id)
        .order_by(i.created_at, i.kind)
    )
    cv = t.conversations.c
    convs = await conn.execute(
        select(cv.id, cv.status, cv.channel, cv.agent_id, cv.opened_at, cv.resolved_at)
        .where(cv.tenant_id == tenant_id, cv.customer_id == customer_id)
        .order_by(cv.opened_at.desc())
    )
    a = t.assignments.c
    last_agents = await conn.execute(
        select(a.agent_id, func.max(a.assigned_at).label("last_assigned_at"))
        .join(t.conversations, (cv.tenant_id == a.tenant_id) & (cv.id == a.conversation_id))
        .where(cv.tenant_id == tenant_id, cv.customer_id == customer_id)
        .group_by(a.agent_id)
        .order_by(func.max(a.assigned_at).desc())
        .limit(5)
    )
    sg = t.suggestions.c
    suggestions = await conn.execute(
        select(sg.customer_id, sg.other_customer_id, sg.kind, sg.value, sg.created_at).where(
            sg.tenant_id == tenant_id, or_(sg.customer_id == customer_id, sg.other_customer_id == customer_id)
        )
    )
    return {
        **_row(row),
        "identities": [_row(r) for r in ids],
        "conversations": [_row(r) for r in convs],
        "last_agents": [_row(r) for r in last_agents],
        "suggestions": [
            {
                "customer_id": r.other_customer_id if r.customer_id == customer_id else r.customer_id,
                "reason": f"unverified {r.kind} claim",
                "kind": r.kind,
                "value": r.value,
                "created_at": r.created_at,
            }
            for r in suggestions
        ],
    }


def of_identity(
    query: Select[Any], customer_id: ColumnElement[Any], tenant_id: str, kind: IdentityKind, value: str
) -> Select[Any]:
    """``query`` narrowed to the customer the tenant knows by this identity, joined on its ``customer_id``."""
    i = t.identities.c
    return query.join(t.identities, i.customer_id == customer_id).where(
        i.tenant_id == tenant_id, i.kind == kind.value, i.value == value
    )


async def customers_by_identifier(conn: AsyncConnection, tenant_id: str, kind: str, value: str) -> list[str]:
    i = t.identities.c
    rows = await conn.execute(select(i.customer_id).where(i.tenant_id == tenant_id, i.kind == kind, i.value == value))
    return [r.customer_id for r in rows]


async def conversation(conn: AsyncConnection, tenant_id: str, conversation_id: str) -> dict[str, Any] | None:
    c = t.conversations.c
    row = (
        await conn.execute(
            select(
                c.id,
                c.customer_id,
                c.status,
                c.channel,
                c.queue_id,
                c.agent_id,
                c.opened_at,
                c.queued_at,
                c.assigned_at,
                c.last_message_at,
                c.resolved_at,
                c.resolution_note,
                c.reopened_at,
                c.previous_conversation_id,
                c.merged_into,
            ).where(c.tenant_id == tenant_id, c.id == conversation_id)
        )
    ).first()
    if row is None:
        return None
    m = t.messages.c
    msgs = await conn.execute(
        select(
            m.id,
            m.event_id,
            m.channel,
            m.direction,
            m.channel_message_id,
            m.subject,
            m.text,
            m.attachments,
            m.sent_at,
            m.received_at,
            m.author,
            m.status,
            m.error,
            m.sanitized,
        )
        .where(m.tenant_id == tenant_id, m.conversation_id == conversation_id)
        .order_by(m.seq)
    )
    messages = [_row(r) for r in msgs]
    i = t.identities.c
    reachable = await conn.execute(
        select(i.kind).where(i.tenant_id == tenant_id, i.customer_id == row.customer_id).distinct()
    )
    window: dict[str, Any] = {}
    if row.channel == "whatsapp" or any(
        msg["channel"] == "whatsapp" and msg["direction"] == "inbound" for msg in messages
    ):
        # until when free text goes on WhatsApp, a template after (null: the customer has not written there)
        latest = (
            await conn.execute(
                select(m.received_at, m.created_at)
                .where(
                    m.tenant_id == tenant_id,
                    m.conversation_id == conversation_id,
                    m.direction == "inbound",
                    m.channel == "whatsapp",
                )
                .order_by(m.seq.desc())
                .limit(1)
            )
        ).first()
        opened = whatsapp_window.opened_at(latest.received_at, latest.created_at) if latest else None
        window["whatsapp_window_closes_at"] = whatsapp_window.closes_at(opened)
    return {
        **_row(row),
        # replies go back where the customer last wrote, unless the agent picks another of these
        "reply_channel": row.channel,
        "reachable_by": sorted(r.kind for r in reachable),
        **window,
        "messages": messages,
    }


async def agent_exists(conn: AsyncConnection, tenant_id: str, agent_id: str) -> bool:
    a = t.agents.c
    row = (await conn.execute(select(a.id).where(a.tenant_id == tenant_id, a.id == agent_id))).first()
    return row is not None


async def average_handle_s(conn: AsyncConnection, tenant_id: str, last: int = 200) -> float | None:
    """Mean assigned → ended time of the tenant's latest ``last`` finished assignments (None if none)."""
    s = t.assignments.c
    rows = await conn.execute(
        select(s.assigned_at, s.ended_at)
        .where(s.tenant_id == tenant_id, s.ended_at.is_not(None))
        .order_by(s.seq.desc())
        .limit(last)
    )
    spans = [(r.ended_at - r.assigned_at).total_seconds() for r in rows]
    return statistics.fmean(spans) if spans else None


async def agents(conn: AsyncConnection, tenant_id: str) -> list[dict[str, Any]]:
    a = t.agents.c
    rows = await conn.execute(
        select(a.id, a.name, a.presence, a.capacity, a.queue_ids).where(a.tenant_id == tenant_id).order_by(a.name)
    )
    return [_row(r) for r in rows]


async def queues(conn: AsyncConnection, tenant_id: str) -> list[dict[str, Any]]:
    q = t.queues.c
    rows = await conn.execute(
        select(q.id, q.name, q.channels, q.is_default).where(q.tenant_id == tenant_id).order_by(q.name)
    )
    return [_row(r) for r in rows]


async def feed_after(
    conn: AsyncConnection, tenant_id: str, agent_id: str, after_seq: int | None, limit: int = 500
) -> list[dict[str, Any]]:
    """What a console must see on (re)connecting: after a feed position (Last-Event-ID), everything it
    missed; on a first connection (None), its current workload: the latest offer or assignment event of
    each conversation it holds now."""
    e = t.agent_events.c
    cols = (e.seq, e.id, e.agent_id, e.type, e.conversation_id, e.data, e.at)
    if after_seq is not None:
        rows = await conn.execute(
            select(*cols)
            .where(e.tenant_id == tenant_id, e.agent_id == agent_id, e.seq > after_seq)
            .order_by(e.seq)
            .limit(limit)
        )
        return [_row(r) for r in rows]
    s = t.assignments.c
    held = select(s.conversation_id).where(s.tenant_id == tenant_id, s.agent_id == agent_id, s.ended_at.is_(None))
    rows = await conn.execute(
        select(*cols)
        .where(
            e.tenant_id == tenant_id,
            e.agent_id == agent_id,
            e.type.in_(("offer", "assignment")),
            e.conversation_id.in_(held),
        )
        .order_by(e.seq)
    )
    latest: dict[str, dict[str, Any]] = {}
    for r in rows:
        latest[r.conversation_id] = _row(r)
    return sorted(latest.values(), key=lambda r: r["seq"])[:limit]


async def export(conn: AsyncConnection, tenant_id: str, customer_id: str) -> dict[str, Any] | None:
    """Everything stored about one customer, as one document (GDPR Art. 15 and 20): profile, identities,
    every conversation with all its messages, the timeline, survey answers."""
    profile = await customer(conn, tenant_id, customer_id)
    if profile is None:
        return None
    cv, m, v = t.conversations.c, t.messages.c, t.surveys.c
    convs = [
        _row(r)
        for r in await conn.execute(
            select(t.conversations)
            .where(cv.tenant_id == tenant_id, cv.customer_id == customer_id)
            .order_by(cv.opened_at)
        )
    ]
    messages: dict[str, list[dict[str, Any]]] = {}
    for r in await conn.execute(
        select(
            m.id,
            m.conversation_id,
            m.channel,
            m.direction,
            m.sender_kind,
            m.subject,
            m.text,
            m.attachments,
            m.sent_at,
            m.received_at,
            m.status,
        )
        .where(m.tenant_id == tenant_id, m.customer_id == customer_id)
        .order_by(m.seq)
    ):
        messages.setdefault(r.conversation_id, []).append(_row(r))
    for conv in convs:
        conv["messages"] = messages.get(conv["id"], [])
    surveys = [
        _row(r)
        for r in await conn.execute(
            select(v.conversation_id, v.kind, v.channel, v.sent_at, v.score, v.comment, v.answered_at).where(
                v.tenant_id == tenant_id, v.customer_id == customer_id
            )
        )
    ]
    tl = t.timeline.c
    entries = [  # messages are not in it (0019), nor conversations' "opened" (0020)
        (r.seq, {k: v for k, v in _row(r).items() if k != "seq"})
        for r in await conn.execute(
            select(tl.seq, tl.kind, tl.conversation_id, tl.channel, tl.at, tl.data).where(
                tl.tenant_id == tenant_id, tl.customer_id == customer_id
            )
        )
    ]
    entries += [
        (
            conv["seq"],
            {
                "kind": "opened",
                "conversation_id": conv["id"],
                "channel": None,
                "at": conv["opened_at"],
                "data": opened_data(conv["opened_channel"], erased=conv["erased_at"] is not None),
            },
        )
        for conv in convs
        if conv["seq"] is not None
    ]
    entries += [  # nor acknowledgements' "acknowledged" (0024)
        (
            r.note_seq,
            {
                "kind": "acknowledged",
                "conversation_id": r.conversation_id,
                "channel": None,
                "at": r.created_at,
                "data": acknowledged_data(r.id, r.channel, r.acknowledgement),
            },
        )
        for r in await conn.execute(
            select(m.note_seq, m.id, m.conversation_id, m.channel, m.created_at, m.acknowledgement).where(
                m.tenant_id == tenant_id, m.customer_id == customer_id, m.note_seq.is_not(None)
            )
        )
    ]
    events = [entry for _, entry in sorted(entries, key=lambda e: e[0])]
    return {
        "format": "switchboard.customer-export/1",
        "customer": {k: v for k, v in profile.items() if k not in ("conversations", "last_agents")},
        "conversations": convs,
        "surveys": surveys,
        "events": events,
    }
