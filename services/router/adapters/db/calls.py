"""Phone calls (the ``Calls`` port). A call is an inbound message on channel ``voice`` whose
``channel_message_id`` is the call's sid; its progress lines are messages with ``sender_kind`` "call"."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, tuple_, update

from services.router.adapters.db import tables as t
from services.router.adapters.db.repository import SqlRepository
from services.router.adapters.db.statements import key_in, resolution, rows_in
from services.router.domain.model import ConversationStatus
from services.router.handlers.ports.records import CallConversation, VoiceRequest, WaitingCall
from shared.events import IdentityKind


class SqlCalls(SqlRepository):
    """What the voice flow reads and writes in one transaction."""

    async def conversations_of_calls(self, calls: Iterable[tuple[str, str]]) -> dict[tuple[str, str], CallConversation]:
        """(tenant, call sid) → the conversation the call came in on."""
        m, c = t.messages.c, t.conversations.c
        rows = await rows_in(
            self.conn,
            select(m.tenant_id, m.channel_message_id, c.id, c.customer_id, c.status, c.agent_id)
            .join(t.conversations, _conversation_of(m))
            .where(m.channel == "voice", m.direction == "inbound"),
            tuple_(m.tenant_id, m.channel_message_id),
            calls,
        )
        return {
            (r.tenant_id, r.channel_message_id): CallConversation(r.id, r.customer_id, r.status, r.agent_id)
            for r in rows
        }

    async def with_voicemail(self, calls: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """A voicemail is a message threaded under ``voicemail:<call sid>``."""
        refs = {(tenant_id, f"voicemail:{sid}") for tenant_id, sid in calls}
        m = t.messages.c
        rows = await rows_in(self.conn, select(m.tenant_id, m.thread_ref), tuple_(m.tenant_id, m.thread_ref), refs)
        return {(r.tenant_id, r.thread_ref.removeprefix("voicemail:")) for r in rows}

    async def last_written_channels(self, keys: Sequence[tuple[str, str]]) -> dict[str, str]:
        """The channel each customer last wrote on other than the phone."""
        if not keys:
            return {}
        m = t.messages.c
        latest = (
            select(m.tenant_id, m.conversation_id, func.max(m.seq).label("seq"))
            .where(
                key_in(self.conn, tuple_(m.tenant_id, m.conversation_id), list(set(keys))),
                m.direction == "inbound",
                m.channel != "voice",
                m.sender_kind != "call",
            )
            .group_by(m.tenant_id, m.conversation_id)
            .subquery()
        )
        rows = await self.conn.execute(select(m.conversation_id, m.channel).join(latest, _latest_of(m, latest)))
        return {r.conversation_id: r.channel for r in rows}

    async def waiting(self, tenant_id: str, conversation_ids: Iterable[str]) -> list[WaitingCall]:
        """Those of these conversations still open; the wait runs from queueing (or opening, if never queued)."""
        ids = list(conversation_ids)
        if not ids:
            return []
        c = t.conversations.c
        rows = await self.conn.execute(
            select(c.id, c.customer_id, func.coalesce(c.queued_at, c.opened_at)).where(
                c.id.in_(ids), c.tenant_id == tenant_id, c.status == ConversationStatus.OPEN.value
            )
        )
        return [WaitingCall(*r) for r in rows]

    async def mark_abandoned(self, tenant_id: str, conversation_ids: Sequence[str], note: str, now: datetime) -> None:
        """Resolved and ``abandoned_at`` set, one statement for the batch."""
        if not conversation_ids:
            return
        c = t.conversations.c
        await self.conn.execute(
            update(t.conversations)
            .where(c.tenant_id == tenant_id, c.id.in_(list(conversation_ids)))
            .values(abandoned_at=now, resolution_note=note, **resolution(now))
        )

    async def latest_requests(self, keys: Iterable[tuple[str, str]]) -> list[VoiceRequest]:
        """The latest inbound voice message of each conversation that is not a call-log line."""
        ids = list(set(keys))
        if not ids:
            return []
        m, c = t.messages.c, t.conversations.c
        latest = (
            select(m.tenant_id, m.conversation_id, func.max(m.seq).label("seq"))
            .where(
                key_in(self.conn, tuple_(m.tenant_id, m.conversation_id), ids),
                m.channel == "voice",
                m.direction == "inbound",
                m.sender_kind != "call",
            )
            .group_by(m.tenant_id, m.conversation_id)
            .subquery()
        )
        rows = await self.conn.execute(
            select(m.tenant_id, m.conversation_id, c.customer_id, m.channel_message_id, m.thread_ref, m.text)
            .join(latest, _latest_of(m, latest))
            .join(t.conversations, _conversation_of(m))
        )
        return [VoiceRequest(*r) for r in rows]

    async def phone_identities(self, keys: Iterable[tuple[str, str]]) -> dict[str, str]:
        i = t.identities.c
        phones = select(i.customer_id, i.value).where(i.kind == IdentityKind.PHONE.value)
        return {
            r.customer_id: r.value for r in await rows_in(self.conn, phones, tuple_(i.tenant_id, i.customer_id), keys)
        }

    async def profile_phones(self, keys: Iterable[tuple[str, str]]) -> dict[str, str | None]:
        cu = t.customers.c
        return {
            r.id: r.phone for r in await rows_in(self.conn, select(cu.id, cu.phone), tuple_(cu.tenant_id, cu.id), keys)
        }

    async def voice_endpoints(self, keys: Iterable[tuple[str, str]]) -> dict[str, str | None]:
        a = t.agents.c
        rows = await rows_in(self.conn, select(a.id, a.voice_endpoint), tuple_(a.tenant_id, a.id), keys)
        return {r.id: r.voice_endpoint for r in rows}


def _conversation_of(m: Any) -> Any:
    """A message's conversation, joined by the tenant's key."""
    c = t.conversations.c
    return and_(c.tenant_id == m.tenant_id, c.id == m.conversation_id)


def _latest_of(m: Any, latest: Any) -> Any:
    """A message that is its conversation's latest of ``latest`` (tenant, conversation, seq)."""
    return and_(latest.c.tenant_id == m.tenant_id, latest.c.conversation_id == m.conversation_id, latest.c.seq == m.seq)
