"""Conversations, their messages and their timeline."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from services.router.handlers.ports.records import (
    Lifecycle,
    NewConversation,
    NewMessage,
    NewSlaTimer,
    OpenConversation,
    Placement,
)

# A timeline note on a conversation: (conversation id, kind, data).
Note = tuple[str, str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class WantedConversation:
    """A customer needs an open conversation: the tenant and channel of one that starts, and when the customer's
    message that asks for it was received (None: no message, such as a callback)."""

    tenant_id: str
    channel: str
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ConversationPlan:
    """``open``: customer id → their open conversation, as it is once ``new`` is inserted; ``lifecycle``: the
    reopened entries of the customers' timelines (a new conversation is its own "opened" entry)."""

    open: dict[str, OpenConversation]
    new: list[NewConversation]
    lifecycle: list[Lifecycle]


class ConversationOpenedMeanwhile(RuntimeError):
    """Another transaction opened a conversation for one of the customers after it was planned: the batch is
    taken again (it then finds that conversation)."""

    retriable = True


class Conversations(Protocol):
    async def known_event_ids(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]: ...

    async def open_conversations(self, keys: Iterable[tuple[str, str]]) -> dict[str, OpenConversation]:
        """The open conversation of each of these (tenant, customer id) that has one, by customer id."""
        ...

    async def plan_conversations(
        self,
        wanted: Mapping[str, WantedConversation],
        now: datetime,
        reopen_within: timedelta | None = None,
        created: Collection[str] = (),
    ) -> ConversationPlan:
        """``wanted``: by customer id. The open conversation of every customer, and the lifecycle entries that
        causes. Without an open one, the customer's latest resolved conversation reopens (written now) if it was
        resolved within ``reopen_within``; otherwise a new one starts (``ConversationPlan.new``, written by
        ``insert_conversations``), linked to the previous, already touched (``touch_conversations``) by the
        customer's message if it has one (``received_at``). ``created``: customers created in this transaction,
        who have no conversation to look up."""
        ...

    async def insert_conversations(
        self, new: Sequence[NewConversation], placed: Mapping[str, Placement], clocks: Sequence[NewSlaTimer] = ()
    ) -> None:
        """The planned conversations, each with where routing placed it (if it did) and the SLA clocks it starts
        with (those of ``clocks`` that are its own), in one write. The partial
        unique index keeps it to one open conversation per customer: one opened meanwhile by another
        transaction raises ``ConversationOpenedMeanwhile`` (retriable: planned again, the other is found)."""
        ...

    async def touch_conversations(self, last: Mapping[tuple[str, str], tuple[str, datetime]]) -> None:
        """(tenant, conversation id) → (channel the customer last used, time): replies go back on that channel."""
        ...

    async def insert_messages(self, rows: Sequence[NewMessage], now: datetime) -> None:
        """Messages, one multi-row statement for the whole batch; each is its own entry on the customer's timeline."""
        ...

    async def add_lifecycle(self, rows: Sequence[Lifecycle]) -> None: ...

    async def mark_escalated(self, keys: Sequence[tuple[str, str]], now: datetime) -> None:
        """(tenant, conversation id) pairs escalated now (the first escalation's time is kept)."""
        ...

    async def add_conversation_notes(
        self, notes: Mapping[str, Sequence[Note]], now: datetime, owners: Mapping[tuple[str, str], str] | None = None
    ) -> None:
        """Lifecycle entries known by conversation (escalated, auto-acknowledged), of each tenant: on their
        customer's timeline, in one write. ``owners``: (tenant, conversation) → customer where the caller knows
        it (a conversation it opened); the others are looked up."""
        ...

    async def resolve_conversations(
        self, notes: Mapping[tuple[str, str], str | None], now: datetime
    ) -> dict[tuple[str, str], str | None]:
        """Resolve open conversations ((tenant, id) → the resolution note), in one write per table whatever their
        number and their tenants': ends their live assignments (freeing the agents' capacity), and empties their
        routing fact and their SLA clocks' slots in the same write of the row (the caller reads the running
        clocks first and settles them with ``SlaTimers.settle(..., emptied=True)``). Returns each one's agent
        who held it, if one did. ``NotFound`` or ``InvalidCommand`` (not open) for the first that cannot be
        resolved: nothing is written then."""
        ...

    async def conversation_is_open(self, tenant_id: str, conversation_id: str) -> bool: ...
