"""A customer's timeline: their messages, conversations (each its "opened" entry), acknowledgements (each its
"acknowledged" entry too) and lifecycle entries, which share one numbering (tables/context.py), read as one
stream, newest first."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, String, Text, cast, literal_column, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.adapters.db import tables as t


async def timeline(
    conn: AsyncConnection, tenant_id: str, customer_id: str, before_seq: int | None, limit: int
) -> list[dict[str, Any]]:
    """Newest first, keyset-paginated on seq: a page never repeats or skips an entry that existed when the first
    page was read, however many arrive meanwhile. The customer's messages, conversations (each its "opened"
    entry), acknowledgements (each its "acknowledged" entry, by its own number, ``note_seq``) and lifecycle
    entries share one numbering (tables/context.py), so each gives its newest ``limit`` and the merge keeps the
    top."""
    tl, m, c = t.timeline.c, t.messages.c, t.conversations.c
    events = select(
        tl.seq,
        tl.kind,
        tl.conversation_id,
        tl.channel,
        tl.at,
        tl.data,
        cast(null(), String).label("message_id"),
        cast(null(), String).label("direction"),
        cast(null(), Text).label("subject"),
        cast(null(), Text).label("text"),
        cast(null(), c.erased_at.type).label("erased_at"),
    ).where(tl.tenant_id == tenant_id, tl.customer_id == customer_id)
    said = select(
        m.seq,
        literal_column("'message'", String).label("kind"),
        m.conversation_id,
        m.channel,
        m.received_at.label("at"),
        cast(null(), JSON).label("data"),
        m.id.label("message_id"),
        m.direction,
        m.subject,
        m.text,
        cast(null(), c.erased_at.type).label("erased_at"),
    ).where(m.tenant_id == tenant_id, m.customer_id == customer_id)
    opened = select(
        c.seq,
        literal_column("'opened'", String).label("kind"),
        c.id.label("conversation_id"),
        c.opened_channel.label("channel"),
        c.opened_at.label("at"),
        cast(null(), JSON).label("data"),
        cast(null(), String).label("message_id"),
        cast(null(), String).label("direction"),
        cast(null(), Text).label("subject"),
        cast(null(), Text).label("text"),
        c.erased_at,  # its entry's data is blanked with the rest's
    ).where(c.tenant_id == tenant_id, c.customer_id == customer_id, c.seq.is_not(None))
    promised = select(
        m.note_seq.label("seq"),
        literal_column("'acknowledged'", String).label("kind"),
        m.conversation_id,
        m.channel,
        m.created_at.label("at"),
        m.acknowledgement.label("data"),
        m.id.label("message_id"),  # set: the entry is derived from the message (``acknowledged_data``)
        cast(null(), String).label("direction"),
        cast(null(), Text).label("subject"),
        cast(null(), Text).label("text"),
        cast(null(), c.erased_at.type).label("erased_at"),
    ).where(m.tenant_id == tenant_id, m.customer_id == customer_id, m.note_seq.is_not(None))
    if before_seq is not None:
        events, said = events.where(tl.seq < before_seq), said.where(m.seq < before_seq)
        opened, promised = opened.where(c.seq < before_seq), promised.where(m.note_seq < before_seq)
    both = union_all(
        events.order_by(tl.seq.desc()).limit(limit).subquery().select(),
        said.order_by(m.seq.desc()).limit(limit).subquery().select(),
        opened.order_by(c.seq.desc()).limit(limit).subquery().select(),
        promised.order_by(m.note_seq.desc()).limit(limit).subquery().select(),
    ).subquery()
    rows = await conn.execute(select(both).order_by(both.c.seq.desc()).limit(limit))
    out = []
    for r in rows:
        item: dict[str, Any] = {"seq": r.seq, "kind": r.kind, "conversation_id": r.conversation_id, "at": r.at}
        if r.kind == "message":
            item.update(
                message_id=r.message_id, channel=r.channel, direction=r.direction, subject=r.subject, text=r.text
            )
        elif r.kind == "opened" and r.data is None:  # a conversation's own entry
            item["data"] = opened_data(r.channel, erased=r.erased_at is not None)
        elif r.kind == "acknowledged" and r.message_id is not None:  # an acknowledgement's own entry
            item["data"] = acknowledged_data(r.message_id, r.channel, r.data)
        else:
            item["data"] = r.data
        out.append(item)
    return out


def opened_data(channel: str | None, *, erased: bool) -> dict[str, Any]:
    """A conversation's "opened" entry's data: where it started (blanked, as every entry's, once erased)."""
    return {} if erased or channel is None else {"channel": channel}


def acknowledged_data(message_id: str, channel: str, promise: dict[str, Any] | None) -> dict[str, Any]:
    """An acknowledgement's "acknowledged" entry's data: the message and what it promised (blanked, as every
    entry's, once erased: erasure clears the promise)."""
    return {} if promise is None else {"message_id": message_id, "channel": channel, **promise}
