"""Merging two customers, and undoing it exactly.

A merge moves everything of the merged customer to the survivor and writes down precisely what it moved
(identity ids, conversation ids, message ids, timeline entries, a folded open conversation and the
assignments it ended) in the merges table. Unmerge moves exactly those back. Both run inside the caller's
transaction, so they are atomic with whatever else the transaction does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, Update, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.adapters.db import tables as t
from services.router.adapters.db.statements import add_lifecycle
from services.router.domain.errors import InvalidCommand, NotFound
from services.router.domain.model import ConversationStatus
from services.router.handlers.ports.records import Lifecycle
from shared.ids import new_id


async def _ids(conn: AsyncConnection, tenant_id: str, column: Any, *where: Any) -> list[Any]:
    """``column`` of the tenant's rows of its table that meet ``where``, in order."""
    mine = column.table.c.tenant_id == tenant_id
    return [r[0] for r in await conn.execute(select(column).where(mine, *where).order_by(column))]


async def _require_customers(conn: AsyncConnection, tenant_id: str, *ids: str) -> dict[str, Any]:
    c = t.customers.c
    rows = {
        r.id: r
        for r in await conn.execute(
            select(c.id, c.merged_into).where(c.tenant_id == tenant_id, c.id.in_(ids)).with_for_update()
        )
    }
    for cid in ids:
        if cid not in rows:
            raise NotFound(f"no customer {cid}")
    return rows


async def merge_customers(
    conn: AsyncConnection, tenant_id: str, survivor: str, merged: str, *, reason: str, actor: str, now: datetime
) -> str:
    if survivor == merged:
        raise InvalidCommand("a customer cannot be merged into itself")
    rows = await _require_customers(conn, tenant_id, survivor, merged)
    if rows[merged].merged_into or rows[survivor].merged_into:
        raise InvalidCommand("one of these customers was already merged into another")

    i, cv, m, tl, a = t.identities.c, t.conversations.c, t.messages.c, t.timeline.c, t.assignments.c
    open_ = ConversationStatus.OPEN.value
    record: dict[str, Any] = {
        "identities": await _ids(conn, tenant_id, i.id, i.customer_id == merged),
        "messages": await _ids(conn, tenant_id, m.id, m.customer_id == merged),
        "timeline": await _ids(conn, tenant_id, tl.seq, tl.customer_id == merged),
        "folded": None,
    }
    survivor_open = await _ids(conn, tenant_id, cv.id, cv.customer_id == survivor, cv.status == open_)
    merged_open = await _ids(conn, tenant_id, cv.id, cv.customer_id == merged, cv.status == open_)
    if survivor_open and merged_open:
        # Both have an open conversation: one customer, one open conversation, so fold the merged one in.
        folded, into = merged_open[0], survivor_open[0]
        ended = await _ids(conn, tenant_id, a.id, a.conversation_id == folded, a.ended_at.is_(None))
        record["folded"] = {
            "conversation": folded,
            "into": into,
            "messages": await _ids(conn, tenant_id, m.id, m.conversation_id == folded),
            "ended_assignments": ended,
        }
        await conn.execute(_of(t.messages, tenant_id, m.conversation_id == folded).values(conversation_id=into))
        if ended:
            await conn.execute(_of(t.assignments, tenant_id, a.id.in_(ended)).values(ended_at=now))
        await conn.execute(_of(t.conversations, tenant_id, cv.id == folded).values(status="merged", merged_into=into))
    # every one of them, the folded one too: a conversation is its "opened" entry on its customer's timeline,
    # which moves with the rest of the timeline
    record["conversations"] = await _ids(conn, tenant_id, cv.id, cv.customer_id == merged)
    await conn.execute(_of(t.identities, tenant_id, i.customer_id == merged).values(customer_id=survivor))
    moved = cv.id.in_(record["conversations"])
    await conn.execute(_of(t.conversations, tenant_id, moved).values(customer_id=survivor))
    await conn.execute(_of(t.messages, tenant_id, m.customer_id == merged).values(customer_id=survivor))
    await conn.execute(_of(t.timeline, tenant_id, tl.customer_id == merged).values(customer_id=survivor))
    await conn.execute(_of(t.customers, tenant_id, t.customers.c.id == merged).values(merged_into=survivor))

    merge_id = new_id()
    await conn.execute(
        insert(t.merges).values(
            id=merge_id,
            tenant_id=tenant_id,
            survivor_id=survivor,
            merged_id=merged,
            reason=reason,
            actor=actor,
            record=record,
            created_at=now,
        )
    )
    await _note(conn, tenant_id, survivor, "customer_merged", now, merge_id, merged, reason, actor)
    return merge_id


async def unmerge_customers(
    conn: AsyncConnection, tenant_id: str, survivor: str, merged: str, *, actor: str, now: datetime
) -> str:
    await _require_customers(conn, tenant_id, survivor, merged)
    mg = t.merges.c
    row = (
        await conn.execute(
            select(mg.id, mg.record)
            .where(
                mg.tenant_id == tenant_id, mg.survivor_id == survivor, mg.merged_id == merged, mg.undone_at.is_(None)
            )
            .order_by(mg.created_at.desc())
            .limit(1)
            .with_for_update()
        )
    ).first()
    if row is None:
        raise InvalidCommand("these customers have no merge to undo")
    record: dict[str, Any] = row.record
    i, cv, m, tl, a = t.identities.c, t.conversations.c, t.messages.c, t.timeline.c, t.assignments.c
    await conn.execute(_of(t.identities, tenant_id, i.id.in_(record["identities"])).values(customer_id=merged))
    await conn.execute(_of(t.conversations, tenant_id, cv.id.in_(record["conversations"])).values(customer_id=merged))
    await conn.execute(_of(t.messages, tenant_id, m.id.in_(record["messages"])).values(customer_id=merged))
    await conn.execute(_of(t.timeline, tenant_id, tl.seq.in_(record["timeline"])).values(customer_id=merged))
    folded = record.get("folded")
    if folded:
        await conn.execute(
            _of(t.messages, tenant_id, m.id.in_(folded["messages"])).values(conversation_id=folded["conversation"])
        )
        await conn.execute(
            _of(t.conversations, tenant_id, cv.id == folded["conversation"]).values(
                status=ConversationStatus.OPEN.value, merged_into=None
            )
        )
        if folded["ended_assignments"]:
            ended = a.id.in_(folded["ended_assignments"])
            await conn.execute(_of(t.assignments, tenant_id, ended).values(ended_at=None))
    await conn.execute(_of(t.customers, tenant_id, t.customers.c.id == merged).values(merged_into=None))
    await conn.execute(_of(t.merges, tenant_id, mg.id == row.id).values(undone_at=now))
    await _note(conn, tenant_id, survivor, "customer_unmerged", now, row.id, merged, "manual", actor)
    return str(row.id)


def _of(table: Table, tenant_id: str, *where: Any) -> Update:
    """An update of the tenant's rows of ``table`` that meet ``where``: found by the tenant's keys."""
    return update(table).where(table.c.tenant_id == tenant_id, *where)


async def _note(
    conn: AsyncConnection,
    tenant_id: str,
    customer_id: str,
    kind: str,
    now: datetime,
    merge_id: str,
    other: str,
    reason: str,
    actor: str,
) -> None:
    data = {"merge_id": merge_id, "other_customer_id": other, "reason": reason, "actor": actor}
    await add_lifecycle(conn, [Lifecycle(tenant_id, customer_id, None, kind, now, data)])
