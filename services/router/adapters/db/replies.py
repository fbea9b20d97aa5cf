"""Agents' replies (the ``Replies`` port): outbound messages, their delivery statuses, and what a reply needs
to know about its conversation and customer."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import bindparam, func, select, tuple_, update

from services.router.adapters.db import tables as t
from services.router.adapters.db.repository import SqlRepository
from services.router.adapters.db.statements import rows_in, update_by_id
from services.router.handlers.ports.records import DeliveryUpdate, LastInbound, OutboundState, ReplyTarget


class SqlReplies(SqlRepository):
    """Replies and delivery statuses in one transaction."""

    async def reply_target(self, tenant_id: str, conversation_id: str) -> ReplyTarget | None:
        return (await self.reply_targets([(tenant_id, conversation_id)])).get((tenant_id, conversation_id))

    async def reply_targets(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], ReplyTarget]:
        c, cu = t.conversations.c, t.customers.c
        query = select(c.id, c.tenant_id, c.customer_id, c.channel, cu.consent).outerjoin(
            t.customers, (cu.tenant_id == c.tenant_id) & (cu.id == c.customer_id)
        )
        rows = await rows_in(self.conn, query, tuple_(c.tenant_id, c.id), keys)  # a tenant finds only its own
        return {(r.tenant_id, r.id): ReplyTarget(r.customer_id, r.channel, dict(r.consent or {})) for r in rows}

    async def last_inbound(self, tenant_id: str, conversation_id: str, channel: str) -> LastInbound | None:
        return (await self.last_inbounds([(tenant_id, conversation_id, channel)])).get((conversation_id, channel))

    async def last_inbounds(self, keys: Sequence[tuple[str, str, str]]) -> dict[tuple[str, str], LastInbound]:
        m = t.messages.c
        wanted = {(conversation_id, channel) for _, conversation_id, channel in keys}
        query = select(
            m.conversation_id, m.channel, m.channel_message_id, m.thread_ref, m.subject, m.received_at, m.created_at
        ).where(m.direction == "inbound")
        last: dict[tuple[str, str], LastInbound] = {}
        # oldest first: the newest of each pair is the one left
        conversations = {(tenant_id, c) for tenant_id, c, _ in keys}
        for r in await rows_in(self.conn, query.order_by(m.seq), tuple_(m.tenant_id, m.conversation_id), conversations):
            if (r.conversation_id, r.channel) in wanted:
                last[(r.conversation_id, r.channel)] = LastInbound(
                    r.channel_message_id, r.thread_ref, r.subject, r.received_at, r.created_at
                )
        return last

    async def newest_identity(self, tenant_id: str, customer_id: str, kind: str) -> str | None:
        return (await self.newest_identities([(tenant_id, customer_id, kind)])).get((customer_id, kind))

    async def newest_identities(self, keys: Sequence[tuple[str, str, str]]) -> dict[tuple[str, str], str]:
        i = t.identities.c
        wanted = {(customer_id, kind) for _, customer_id, kind in keys}
        query = select(i.customer_id, i.kind, i.value).order_by(i.created_at)  # the newest of each pair last
        customers = {(tenant_id, c) for tenant_id, c, _ in keys}
        rows = await rows_in(self.conn, query, tuple_(i.tenant_id, i.customer_id), customers)
        return {(r.customer_id, r.kind): str(r.value) for r in rows if (r.customer_id, r.kind) in wanted}

    async def record_agent_reply(self, tenant_id: str, conversation_id: str, now: datetime, *, pending: bool) -> None:
        c = t.conversations.c
        await self.conn.execute(
            update(t.conversations)
            .where(c.tenant_id == tenant_id, c.id == conversation_id)
            .values(
                first_response_at=func.coalesce(c.first_response_at, now),
                awaiting="customer",
                pending_since=now if pending else None,
            )
        )

    async def outbound_states(self, keys: Iterable[tuple[str, str]]) -> dict[str, OutboundState]:
        m = t.messages.c
        outbound = select(m.id, m.tenant_id, m.customer_id, m.conversation_id, m.status).where(
            m.direction == "outbound"
        )
        rows = await rows_in(self.conn, outbound, tuple_(m.tenant_id, m.id), keys)
        return {r.id: OutboundState(r.id, r.tenant_id, r.customer_id, r.conversation_id, r.status) for r in rows}

    async def set_delivery_states(self, updates: Sequence[DeliveryUpdate]) -> None:
        m = t.messages.c
        await update_by_id(
            self.conn,
            t.messages,
            [
                dict(
                    b_tenant_id=u.tenant_id,
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
