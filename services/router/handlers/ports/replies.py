"""Agents' replies: outbound messages, their delivery statuses, and what a reply needs to know about the
conversation and the customer it goes to."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from services.router.handlers.ports.records import DeliveryUpdate, LastInbound, OutboundState, ReplyTarget


class Replies(Protocol):
    async def reply_target(self, tenant_id: str, conversation_id: str) -> ReplyTarget | None:
        """The conversation's customer, the channel they last wrote on (a reply goes there unless the agent
        picks another) and the customer's ``consent`` map. None if the tenant has no such conversation."""
        ...

    async def last_inbound(self, tenant_id: str, conversation_id: str, channel: str) -> LastInbound | None:
        """The customer's latest message in the conversation on that channel: a reply on it continues that
        thread (RFC 5322 §3.6.4 In-Reply-To and References for email, the thread for Telegram)."""
        ...

    async def newest_identity(self, tenant_id: str, customer_id: str, kind: str) -> str | None:
        """The value of the customer's most recently added identity of that kind: the address a reply on a
        channel reaches them at. None if they have none."""
        ...

    async def reply_targets(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], ReplyTarget]:
        """``reply_target`` of many (tenant, conversation) pairs in one read (those the tenant has)."""
        ...

    async def last_inbounds(self, keys: Sequence[tuple[str, str, str]]) -> dict[tuple[str, str], LastInbound]:
        """``last_inbound`` of many (tenant, conversation, channel) in one read (those with one), by (conversation,
        channel)."""
        ...

    async def newest_identities(self, keys: Sequence[tuple[str, str, str]]) -> dict[tuple[str, str], str]:
        """``newest_identity`` of many (tenant, customer, kind) in one read (those with one), by (customer,
        kind)."""
        ...

    async def record_agent_reply(self, tenant_id: str, conversation_id: str, now: datetime, *, pending: bool) -> None:
        """An agent answered: the first response time is kept once set (the KPI measures the first answer),
        it is now the customer's turn, and ``pending`` pauses the resolution clock until they write."""
        ...

    async def outbound_states(self, keys: Iterable[tuple[str, str]]) -> dict[str, OutboundState]:
        """Our outbound messages among these (tenant, message id) with their delivery state, by id. Inbound ids are left
        out: a delivery status can only concern what we sent."""
        ...

    async def set_delivery_states(self, updates: Sequence[DeliveryUpdate]) -> None:
        """Store delivery states in the given order (one statement for the batch); a provider id or error of
        None keeps the stored one, so a later "delivered" does not erase the id "sent" brought."""
        ...
