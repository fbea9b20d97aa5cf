"""Agents' replies (the ``Replies`` port): outbound messages, their delivery statuses, and what a reply needs
to know about its conversation and customer."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import bindparam, func, select, update

from services.router.adapters.db import tables as t
from services.router.adapters.db.repository import SqlRepository
from services.router.adapters.db.statements import rows_in, update_by_id
from services.router.handlers.ports.records import DeliveryUpdate, LastInbound, OutboundState, ReplyTarget


class SqlReplies(SqlRepository):
    """Replies and delivery statuses in one transaction."""

    async def reply_target(self, tenant_id: str, conversation_id: str) -> ReplyTarget | None:
        c, cu = t.conversations.c, t.customers.c
        row = (
            await self.conn.execute(
                select(c.customer_id, c.channel, cu.consent)
                .outerjoin(t.customers, cu.id == c.customer_id)
                .where(c.tenant_id == tenant_id, c.id == conversation_id)
            )
        ).first()
        return ReplyTarget(row.customer_id, row.channel, dict(row.consent or {})) if row else None

    async def last_inbound(self, conversation_id: str, channel: str) -> LastInbound | None:
        m = t.messages.c
        row = (
            await self.conn.execute(
                select(m.channel_message_id, m.thread_ref, m.subject)
                .where(m.conversation_id == conversation_id, m.direction == "inbound", m.channel == channel)
                .order_by(m.seq.desc())
                .limit(1)
            )
        ).first()
        return LastInbound(row.channel_message_id, row.thread_ref, row.subject) if row else None

    async def newest_identity(self, customer_id: str, kind: str) -> str | None:
        i = t.identities.c
        row = (
            await self.conn.execute(
                select(i.value)
                .where(i.customer_id == customer_id, i.kind == kind)
                .order_by(i.created_at.desc())
                .limit(1)
            )
        ).first()
        return str(row.value) if row else None

    async def record_agent_reply(self, conversation_id: str, now: datetime, *, pending: bool) -> None:
        c = t.conversations.c
        await self.conn.execute(
            update(t.conversations)
            .where(c.id == conversation_id)
            .values(
                first_response_at=func.coalesce(c.first_response_at, now),
                awaiting="customer",
                pending_since=now if pending else None,
            )
        )

    async def outbound_states(self, message_ids: Iterable[str]) -> dict[str, OutboundState]:
        m = t.messages.c
        outbound = select(m.id, m.tenant_id, m.customer_id, m.conversation_id, m.status).where(
            m.direction == "outbound"
        )
        rows = await rows_in(self.conn, outbound, m.id, message_ids)
        return {r.id: OutboundState(r.id, r.tenant_id, r.customer_id, r.conversation_id, r.status) for r in rows}

    async def set_delivery_states(self, updates: Sequence[DeliveryUpdate]) -> None:
        m = t.messages.c
        await update_by_id(
            self.conn,
            t.messages,
            [
                dict(
                    b_id=u.message_id,
                    b_status=u.status,
                    # the column holds 512 characters
                    b_channel_message_id=u.channel_message_id[:512] if u.channel_message_id else None,
                    b_error=u.error or None,
                )
                for u in updates
            ],
            status=bindparam("b_status"),
            channel_message_id=func.coalesce(
                bindparam("b_channel_message_id", type_=m.channel_message_id.type), m.channel_message_id
            ),
            error=func.coalesce(bindparam("b_error", type_=m.error.type), m.error),
        )
