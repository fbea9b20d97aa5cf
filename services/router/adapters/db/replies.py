"""Agents' replies (the ``Replies`` port): outbound messages, their delivery statuses, and what a reply needs
to know about its conversation and customer."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.adapters.db import tables as t
from services.router.handlers.ports.records import DeliveryUpdate, LastInbound, OutboundState, ReplyTarget


class SqlReplies:
    """Replies and delivery statuses in one transaction."""

    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect

    async def reply_target(self, tenant_id: str, conversation_id: str) -> ReplyTarget | None:
        """The conversation's customer and the channel they last wrote on: a reply goes there unless the agent
        picks another. None if the tenant has no such conversation."""
        c = t.conversations.c
        row = (
            await self.conn.execute(
                select(c.customer_id, c.channel).where(c.tenant_id == tenant_id, c.id == conversation_id)
            )
        ).first()
        return ReplyTarget(row.customer_id, row.channel) if row else None

    async def last_inbound(self, conversation_id: str, channel: str) -> LastInbound | None:
        """The customer's latest message in the conversation on that channel: a reply on it continues that
        thread (RFC 5322 §3.6.4 In-Reply-To and References for email, the thread for Telegram)."""
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
        """The value of the customer's most recently added identity of that kind: the address a reply on a
        channel reaches them at. None if they have none."""
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
        """An agent answered: the first response time is kept once set (the KPI measures the first answer),
        it is now the customer's turn, and ``pending`` pauses the resolution clock until they write."""
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
        """Our outbound messages among ``message_ids`` with their delivery state, by id. Inbound ids are left
        out: a delivery status can only concern what we sent."""
        ids = list(set(message_ids))
        if not ids:
            return {}
        m = t.messages.c
        rows = await self.conn.execute(
            select(m.id, m.tenant_id, m.customer_id, m.conversation_id, m.status).where(
                m.id.in_(ids), m.direction == "outbound"
            )
        )
        return {r.id: OutboundState(r.id, r.tenant_id, r.customer_id, r.conversation_id, r.status) for r in rows}

    async def set_delivery_states(self, updates: Sequence[DeliveryUpdate]) -> None:
        """Store delivery states in the given order (one statement for the batch); a provider id or error of
        None keeps the stored one, so a later "delivered" does not erase the id "sent" brought."""
        if not updates:
            return
        m = t.messages.c
        await self.conn.execute(
            update(t.messages)
            .where(m.id == bindparam("b_id"))
            .values(
                status=bindparam("b_status"),
                channel_message_id=func.coalesce(
                    bindparam("b_channel_message_id", type_=m.channel_message_id.type), m.channel_message_id
                ),
                error=func.coalesce(bindparam("b_error", type_=m.error.type), m.error),
            ),
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
        )
