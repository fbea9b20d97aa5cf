"""Read models for the agent console and the supervisor screen: conversation lists as an inbox shows them
(customer name, last message, how long the customer has waited, the nearest SLA deadline), live SLA risks,
and the duplicate-customer suggestions awaiting a decision. Always filtered by tenant (a foreign id reads as
unknown); read-only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from services.router.adapters.db import tables as t

PREVIEW_CHARS = 140  # a list shows one line of the last message, not the message


def _preview(text: str | None) -> str | None:
    if text is None:
        return None
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= PREVIEW_CHARS else one_line[: PREVIEW_CHARS - 1] + "…"


def _seconds(now: datetime, since: datetime | None) -> float | None:
    return None if since is None else round(max(0.0, (now - since).total_seconds()), 1)


async def held_by(conn: AsyncConnection, tenant_id: str, agent_id: str) -> list[dict[str, Any]]:
    """The open conversations an agent holds now, offered (not yet accepted) or assigned, most recent
    activity first."""
    s, c, q = t.assignments.c, t.conversations.c, t.queues.c
    rows = await conn.execute(
        select(
            c.id.label("conversation_id"),
            c.customer_id,
            c.channel,
            c.status,
            c.queue_id,
            q.name.label("queue_name"),
            c.opened_at,
            c.assigned_at,
            c.last_message_at,
            c.awaiting,
            c.pending_since,
            s.offer_expires_at,
            s.accepted_at,
        )
        .join(t.conversations, (c.tenant_id == s.tenant_id) & (c.id == s.conversation_id))
        .outerjoin(t.queues, (q.tenant_id == c.tenant_id) & (q.id == c.queue_id))
        .where(s.tenant_id == tenant_id, s.agent_id == agent_id, s.ended_at.is_(None), c.tenant_id == tenant_id)
        .order_by(c.last_message_at.desc())
    )
    return [
        {
            "conversation_id": r.conversation_id,
            "customer_id": r.customer_id,
            "channel": r.channel,
            "status": r.status,
            "queue_id": r.queue_id,
            "queue_name": r.queue_name,
            "opened_at": r.opened_at,
            "assigned_at": r.assigned_at,
            "last_message_at": r.last_message_at,
            "awaiting": r.awaiting,
            "pending_since": r.pending_since,
            "offered": r.offer_expires_at is not None and r.accepted_at is None,
            "offer_expires_at": r.offer_expires_at if r.accepted_at is None else None,
        }
        for r in rows
    ]


async def summaries(
    conn: AsyncConnection, tenant_id: str, conversation_ids: Sequence[str], now: datetime
) -> dict[str, dict[str, Any]]:
    """Per conversation, what an inbox row shows: the customer's name, the last message (a one-line preview),
    since when the customer has waited for an answer (their first message after our last reply; none when we
    answered last), and the nearest live SLA deadline."""
    ids = list(dict.fromkeys(conversation_ids))
    if not ids:
        return {}
    c, cu, m = t.conversations.c, t.customers.c, t.messages.c
    out: dict[str, dict[str, Any]] = {
        r.id: {"customer_name": r.name, "last_message": None, "waiting_since": None, "waiting_s": None, "sla": None}
        for r in await conn.execute(
            select(c.id, cu.name)
            .join(t.customers, (cu.tenant_id == c.tenant_id) & (cu.id == c.customer_id))
            .where(c.tenant_id == tenant_id, c.id.in_(ids))
        )
    }
    ids = list(out)
    if not ids:
        return out
    # what the desk sent by itself (an acknowledgement: sender "system") is neither the news nor an answer
    mine = m.tenant_id == tenant_id, m.conversation_id.in_(ids)
    last_seq = select(func.max(m.seq)).where(*mine, m.sender_kind != "system").group_by(m.conversation_id)
    for last in await conn.execute(
        select(m.conversation_id, m.direction, m.text, m.author, m.received_at).where(
            m.tenant_id == tenant_id, m.seq.in_(last_seq)
        )
    ):
        out[last.conversation_id]["last_message"] = {
            "direction": last.direction,
            "text": _preview(last.text),
            "author": last.author,
            "at": last.received_at,
        }
    answered = aliased(t.messages)
    last_reply = (
        select(func.coalesce(func.max(answered.c.seq), 0))
        .where(
            answered.c.tenant_id == m.tenant_id,
            answered.c.conversation_id == m.conversation_id,
            answered.c.direction == "outbound",
            answered.c.sender_kind != "system",
        )
        .scalar_subquery()
    )
    for unanswered in await conn.execute(
        select(m.conversation_id, func.min(m.received_at).label("since"))
        .where(*mine, m.direction == "inbound", m.seq > last_reply)
        .group_by(m.conversation_id)
    ):
        out[unanswered.conversation_id]["waiting_since"] = unanswered.since
        out[unanswered.conversation_id]["waiting_s"] = _seconds(now, unanswered.since)
    for conversation_id, sla in (await _nearest_deadlines(conn, tenant_id, ids, now)).items():
        out[conversation_id]["sla"] = sla
    return out


async def _nearest_deadlines(
    conn: AsyncConnection, tenant_id: str, ids: list[str], now: datetime
) -> dict[str, dict[str, Any]]:
    """The running SLA timer due first, per conversation; a paused one (waiting on the customer) only when
    nothing else runs, with no countdown."""
    st = t.sla_running.c
    nearest: dict[str, dict[str, Any]] = {}
    for r in await conn.execute(
        select(st.conversation_id, st.kind, st.due_at, st.warn_at, st.paused_at, st.remaining_s, st.breached_at)
        .where(st.tenant_id == tenant_id, st.conversation_id.in_(ids))
        .order_by(st.due_at)
    ):
        paused = r.paused_at is not None
        current = nearest.get(r.conversation_id)
        if current is not None and (paused or not current["paused"]):
            continue  # rows come by due_at: the first running timer wins, a paused one only stands in
        if paused:
            stage = "paused"
        elif r.breached_at is not None or r.due_at <= now:
            stage = "breach"
        else:
            stage = "warning" if r.warn_at <= now else "ok"
        nearest[r.conversation_id] = {
            "kind": r.kind,
            "due_at": None if paused else r.due_at,
            "remaining_s": r.remaining_s if paused else round((r.due_at - now).total_seconds(), 1),
            "paused": paused,
            "stage": stage,
        }
    return nearest


async def sla_risks(conn: AsyncConnection, tenant_id: str, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Running SLA timers past their warning point on open conversations, the most urgent first: what a
    supervisor's screen shows before the live feed adds to it."""
    st, c, cu = t.sla_running.c, t.conversations.c, t.customers.c
    rows = await conn.execute(
        select(
            st.conversation_id,
            st.kind,
            st.due_at,
            st.queue_id,
            st.breached_at,
            c.agent_id,
            c.channel,
            cu.name.label("customer_name"),
        )
        .join(t.conversations, (c.tenant_id == st.tenant_id) & (c.id == st.conversation_id))
        .join(t.customers, (cu.tenant_id == c.tenant_id) & (cu.id == c.customer_id))
        .where(
            st.tenant_id == tenant_id,
            st.paused_at.is_(None),
            st.warn_at <= now,
            c.tenant_id == tenant_id,
            c.status == "open",
        )
        .order_by(st.due_at)
        .limit(limit)
    )
    return [
        {
            "conversation_id": r.conversation_id,
            "kind": r.kind,
            "stage": "breach" if r.breached_at is not None or r.due_at <= now else "warning",
            "due_at": r.due_at,
            "remaining_s": round((r.due_at - now).total_seconds(), 1),
            "queue_id": r.queue_id,
            "agent_id": r.agent_id,
            "channel": r.channel,
            "customer_name": r.customer_name,
        }
        for r in rows
    ]


async def duplicate_suggestions(conn: AsyncConnection, tenant_id: str, limit: int) -> list[dict[str, Any]]:
    """ "These two may be one person" (unverified claims to the same identifier), one entry per pair of
    customers still standing (neither merged away nor erased), newest first, with what a supervisor weighs:
    both names, the shared identifiers, each one's identities and open conversations."""
    sg, cu = t.suggestions.c, t.customers.c
    one, other = aliased(t.customers), aliased(t.customers)
    rows = await conn.execute(
        select(sg.customer_id, sg.other_customer_id, sg.kind, sg.value, sg.created_at)
        .join(one, (one.c.tenant_id == sg.tenant_id) & (one.c.id == sg.customer_id))
        .join(other, (other.c.tenant_id == sg.tenant_id) & (other.c.id == sg.other_customer_id))
        .where(
            sg.tenant_id == tenant_id,
            one.c.tenant_id == tenant_id,
            other.c.tenant_id == tenant_id,
            one.c.merged_into.is_(None),
            other.c.merged_into.is_(None),
            one.c.erased_at.is_(None),
            other.c.erased_at.is_(None),
        )
        .order_by(sg.created_at.desc())
    )
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        a, b = sorted((r.customer_id, r.other_customer_id))
        pair = pairs.get((a, b))
        if pair is None:
            if len(pairs) >= limit:
                continue
            pair = pairs[(a, b)] = {"customer_ids": [a, b], "shared": [], "created_at": r.created_at}
        if {"kind": r.kind, "value": r.value} not in pair["shared"]:
            pair["shared"].append({"kind": r.kind, "value": r.value})
    ids = sorted({cid for a, b in pairs for cid in (a, b)})
    if not ids:
        return []
    i, c = t.identities.c, t.conversations.c
    profiles = {
        r.id: {"id": r.id, "name": r.name, "email": r.email, "phone": r.phone, "created_at": r.created_at}
        for r in await conn.execute(
            select(cu.id, cu.name, cu.email, cu.phone, cu.created_at).where(cu.tenant_id == tenant_id, cu.id.in_(ids))
        )
    }
    identities = dict.fromkeys(ids, 0)
    for r in await conn.execute(
        select(i.customer_id, func.count().label("n"))
        .where(i.tenant_id == tenant_id, i.customer_id.in_(ids))
        .group_by(i.customer_id)
    ):
        identities[r.customer_id] = r.n
    open_convs = dict.fromkeys(ids, 0)
    for r in await conn.execute(
        select(c.customer_id, func.count().label("n"))
        .where(c.tenant_id == tenant_id, c.customer_id.in_(ids), c.status == "open")
        .group_by(c.customer_id)
    ):
        open_convs[r.customer_id] = r.n
    return [
        {
            # oldest first: the customer a merge would most likely keep
            "customers": sorted(
                (
                    {**profiles[cid], "identities": identities[cid], "open_conversations": open_convs[cid]}
                    for cid in pair["customer_ids"]
                ),
                key=lambda p: (p["created_at"], p["id"]),
            ),
            "shared": pair["shared"],
            "created_at": pair["created_at"],
        }
        for pair in pairs.values()
    ]
