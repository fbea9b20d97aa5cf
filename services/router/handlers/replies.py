"""Agents' replies out, delivery statuses back.

A reply is stored (direction outbound, status queued) and its OutboundMessage written to the outbox in one
transaction; the relay puts it on ``conversation.outbound.<channel>`` for that channel's connectors. It goes
where the customer last wrote unless the agent picks another channel the customer is reachable on, and never to
a channel the customer withdrew consent for (domain/consent.py): that reply is refused (409) and the refusal is
on the timeline. On WhatsApp, free text goes only inside the 24-hour customer service window
(domain/whatsapp_window.py): outside it free text is refused the same way, and an approved template goes
instead (templates are WhatsApp's: on another channel one is refused, 422). Statuses reported by connectors on
``conversation.status`` update the message (never backwards: queued < sent < delivered; failed is final) and
a failure lands on the timeline, where the agent sees it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.router.domain import consent, whatsapp_window
from services.router.domain.consent import ConsentWithdrawn, Purpose
from services.router.domain.errors import DomainError, InvalidCommand, InvalidRequest, NotFound
from services.router.domain.whatsapp_window import WindowClosed
from services.router.handlers.outbox import OutboxWriter
from services.router.handlers.ports import Store, UnitOfWork
from services.router.handlers.ports.records import DeliveryUpdate, LastInbound, Lifecycle, NewMessage, ReplyTarget
from services.router.handlers.slas import SlaClock
from shared.bus import Bus, Outgoing, Record, deadletter
from shared.events import Channel, IdentityKind, InvalidEvent
from shared.ids import new_id
from shared.outbound import (
    DeliveryState,
    OutboundMessage,
    Recipient,
    SurveyCard,
    WhatsAppTemplate,
    decode_status,
    encode,
)
from shared.topics import OUTBOUND_CHANNELS, Topics

# Which identity of the customer a channel reaches.
RECIPIENT_KIND: dict[Channel, IdentityKind] = {
    Channel.EMAIL: IdentityKind.EMAIL,
    Channel.CHAT: IdentityKind.CHAT_VISITOR,
    Channel.MESSENGER: IdentityKind.MESSENGER_PSID,
    Channel.INSTAGRAM: IdentityKind.INSTAGRAM_ID,
    Channel.WHATSAPP: IdentityKind.PHONE,
    Channel.SMS: IdentityKind.PHONE,
    Channel.TELEGRAM: IdentityKind.TELEGRAM_ID,
    Channel.VOICE: IdentityKind.PHONE,
    Channel.IN_APP: IdentityKind.APP_USER,
}
# Who the message is from, for what the desk sends itself (an agent's reply counts as a response in the KPIs).
SENDER_KIND: dict[Purpose, str] = {Purpose.ACKNOWLEDGEMENT: "system", Purpose.FOLLOW_UP: "system"}
_RANK = {DeliveryState.QUEUED: 0, DeliveryState.SENT: 1, DeliveryState.DELIVERED: 2, DeliveryState.FAILED: 3}


@dataclass(frozen=True, slots=True)
class Send:
    """One outbound message, as ``ReplyCommands.send`` takes it."""

    conversation_id: str
    text: str
    channel: Channel | None
    author: str
    survey: SurveyCard | None = None
    purpose: Purpose = Purpose.REPLY
    key: str | None = None
    template: WhatsAppTemplate | None = None


@dataclass(frozen=True, slots=True)
class Known:
    """What a sender already holds about the conversations it writes to, keyed as ``send_many`` reads it, so
    that only the rest is read (the context stage knows the conversations it opened in its transaction)."""

    targets: Mapping[tuple[str, str], ReplyTarget] = field(default_factory=dict)  # (tenant, conversation)
    lasts: Mapping[tuple[str, str], LastInbound] = field(default_factory=dict)  # (conversation, channel)
    addresses: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (customer, identity kind)
    # (tenant, conversation) opened in the caller's transaction: nothing was ever sent on it
    opened: frozenset[tuple[str, str]] = frozenset()


NOTHING_KNOWN = Known()


@dataclass(frozen=True, slots=True)
class Prepared:
    """Outbound messages decided, not yet written: each send's outcome in order, the rows and records to write."""

    outcomes: list[dict[str, Any] | DomainError]
    messages: list[NewMessage]
    records: list[Outgoing]


@dataclass(eq=False)
class ReplyCommands(OutboxWriter):
    topics: Topics
    sla: SlaClock

    async def reply(
        self,
        tenant_id: str,
        conversation_id: str,
        text: str | None,
        channel: Channel | None,
        author: str,
        *,
        pending: bool = False,
        template: WhatsAppTemplate | None = None,
    ) -> dict[str, Any]:
        """An agent's answer: out on the customer's channel; it stops the response clocks, and ``pending``
        (waiting on the customer) pauses the resolution clock until they write. Either ``text`` or a WhatsApp
        ``template``, which the message's text then describes."""
        if template is None and text is not None:
            body = text
        elif template is not None and text is None:
            body = template.as_text()
        else:
            raise InvalidRequest("invalid reply: give exactly one of text and template")
        now = self.clock()
        try:
            async with self.repo.unit() as u:
                sent = await self.send(u, tenant_id, conversation_id, body, channel, author, now, template=template)
                await u.replies.record_agent_reply(tenant_id, conversation_id, now, pending=pending)
                await self.sla.agent_replied(u, tenant_id, conversation_id, now, pending=pending)
        except (ConsentWithdrawn, WindowClosed) as refused:
            # the reply's transaction is rolled back; the refusal still belongs on the timeline
            data = refused.refusal.timeline_data() if isinstance(refused, ConsentWithdrawn) else refused.timeline_data()
            note = {**data, "author": author}
            async with self.repo.unit() as u:
                await u.conversations.add_conversation_notes(
                    {tenant_id: [(conversation_id, "reply_refused", note)]}, now
                )
            raise
        await self.relay.flush()
        return sent

    async def send(
        self,
        u: UnitOfWork,
        tenant_id: str,
        conversation_id: str,
        text: str,
        channel: Channel | None,
        author: str,
        now: datetime,
        survey: SurveyCard | None = None,
        purpose: Purpose = Purpose.REPLY,
        key: str | None = None,
        template: WhatsAppTemplate | None = None,
    ) -> dict[str, Any]:
        """Store the outbound message and put it in the outbox, in the caller's transaction. ``ConsentWithdrawn``
        (nothing written) if the customer withdrew consent for the channel, ``WindowClosed`` (nothing written)
        for free text on WhatsApp outside the customer service window: both ``InvalidCommand``s, which a sender
        of its own accord (a survey, an acknowledgement) skips. ``key``: the message's idempotency key
        (``messages`` holds one per tenant), for what the desk sends at most once (an acknowledgement)."""
        send = Send(conversation_id, text, channel, author, survey, purpose, key, template)
        (outcome,) = await self.send_many(u, [(tenant_id, send)], now)
        if isinstance(outcome, DomainError):
            raise outcome
        return outcome

    async def send_many(
        self, u: UnitOfWork, sends: Sequence[tuple[str, Send]], now: datetime, known: Known = NOTHING_KNOWN
    ) -> list[dict[str, Any] | DomainError]:
        """``send`` for many (tenant, message) pairs, of one tenant or many: what they need read in one query per
        kind (none for what ``known`` holds), the messages and their outbox records written in one statement
        each, whatever their number. Each one's outcome in order: what ``send`` returns, or the error ``send``
        would raise for it (that one is not written)."""
        prepared = await self.prepare_many(u, sends, now, known)
        await u.conversations.insert_messages(prepared.messages, now)
        await u.outbox.add(prepared.records, now)
        return prepared.outcomes

    async def prepare_many(
        self, u: UnitOfWork, sends: Sequence[tuple[str, Send]], now: datetime, known: Known = NOTHING_KNOWN
    ) -> Prepared:
        """What ``send_many`` writes, read and decided but not written: for a caller that writes the messages
        with its own (one statement for both)."""
        targets = {**known.targets}
        targets.update(
            await u.replies.reply_targets(
                (tenant_id, x.conversation_id)
                for tenant_id, x in sends
                if (tenant_id, x.conversation_id) not in targets
            )
        )
        outcomes: list[dict[str, Any] | DomainError | None] = [None] * len(sends)
        chosen: dict[int, tuple[Channel, ReplyTarget]] = {}  # what goes out: on which channel, to whom
        for n, (tenant_id, x) in enumerate(sends):
            conv = targets.get((tenant_id, x.conversation_id))
            if conv is None:
                outcomes[n] = NotFound(f"no conversation {x.conversation_id}")
                continue
            channel = x.channel or Channel(conv.channel)
            if x.template is not None and channel is not Channel.WHATSAPP:
                outcomes[n] = InvalidRequest(f"templates are WhatsApp's: a reply on {channel.value} is text")
                continue
            refused = consent.refusal(conv.consent, channel.value, x.purpose)
            if refused is not None:
                outcomes[n] = ConsentWithdrawn(refused.among(await self.reachable(u, tenant_id, conv.customer_id)))
                continue
            if channel.value not in OUTBOUND_CHANNELS:
                outcomes[n] = InvalidCommand(f"no connector delivers {channel.value} replies")
                continue
            chosen[n] = (channel, conv)
        lasts = {**known.lasts}
        lasts.update(
            await u.replies.last_inbounds(
                [
                    (sends[n][0], *k)
                    for n, (c, _) in chosen.items()
                    if (k := (sends[n][1].conversation_id, c.value)) not in lasts
                ]
            )
        )
        addresses = {**known.addresses}
        addresses.update(
            await u.replies.newest_identities(
                [
                    (sends[n][0], *k)
                    for n, (c, conv) in chosen.items()
                    if (k := (conv.customer_id, RECIPIENT_KIND[c].value)) not in addresses
                ]
            )
        )
        messages: list[NewMessage] = []
        records: list[Outgoing] = []
        for n, (channel, conv) in chosen.items():
            tenant_id, x = sends[n]
            kind = RECIPIENT_KIND[channel]
            last_in = lasts.get((x.conversation_id, channel.value))
            if channel is Channel.WHATSAPP and x.template is None:
                opened = whatsapp_window.opened_at(last_in.received_at, last_in.stored_at) if last_in else None
                window = whatsapp_window.window(opened, now)
                if not window.open:
                    outcomes[n] = WindowClosed(window, x.purpose.value)
                    continue
            to = addresses.get((conv.customer_id, kind.value))
            if to is None:
                outcomes[n] = InvalidCommand(f"the customer cannot be reached on {channel.value}")
                continue
            message_id = new_id()
            references = [r for r in (last_in.thread_ref if last_in else None,) if r and r.startswith("<")]
            outbound = OutboundMessage(
                id=message_id,
                tenant=tenant_id,
                conversation_id=x.conversation_id,
                channel=channel,
                to=Recipient(kind=kind, value=to),
                text=x.text,
                subject=last_in.subject if last_in else None,
                in_reply_to=last_in.channel_message_id if last_in and channel is Channel.EMAIL else None,
                references=references,
                thread_ref=last_in.thread_ref if last_in and channel is Channel.TELEGRAM else None,
                created_at=now,
                survey=x.survey,
                template=x.template,
            )
            messages.append(
                NewMessage(
                    message_id,
                    tenant_id,
                    x.key or f"reply:{message_id}",
                    x.conversation_id,
                    conv.customer_id,
                    channel.value,
                    "outbound",
                    None,
                    "survey" if x.survey is not None else SENDER_KIND.get(x.purpose, "agent"),
                    outbound.subject,
                    x.text,
                    now,
                    now,
                    author=x.author,
                    status=DeliveryState.QUEUED.value,
                )
            )
            records.append(Outgoing(self.topics.outbound(channel.value), encode(outbound), x.conversation_id.encode()))
            outcomes[n] = {
                "message_id": message_id,
                "channel": channel.value,
                "to": {"kind": kind.value},
                "status": "queued",
            }
        return Prepared([o for o in outcomes if o is not None], messages, records)

    @staticmethod
    async def reachable(u: UnitOfWork, tenant_id: str, customer_id: str) -> list[str]:
        """The channels a connector delivers on where the customer has an address."""
        found: dict[IdentityKind, bool] = {}
        out = []
        for name in OUTBOUND_CHANNELS:
            kind = RECIPIENT_KIND[Channel(name)]
            if kind not in found:
                found[kind] = await u.replies.newest_identity(tenant_id, customer_id, kind.value) is not None
            if found[kind]:
                out.append(name)
        return out


@dataclass(eq=False)
class StatusStage:
    """Consumes conversation.status; invalid → dead letter; redelivery is harmless (states only move forward)."""

    repo: Store
    bus: Bus
    topics: Topics

    async def handle(self, records: Sequence[Record]) -> None:
        statuses = []
        rejects = []
        for record in records:
            try:
                statuses.append(decode_status(record.value))
            except InvalidEvent as exc:
                rejects.append(deadletter(record, exc.reason, self.topics.deadletter))
        if rejects:
            await self.bus.publish(rejects)
        if not statuses:
            return
        async with self.repo.unit() as u:
            current = await u.replies.outbound_states((s.tenant, s.message_id) for s in statuses)
            state_of = {r.id: DeliveryState(r.status or DeliveryState.QUEUED) for r in current.values()}
            updates: list[DeliveryUpdate] = []
            failures = []
            for s in statuses:
                row = current.get(s.message_id)
                if row is None or row.tenant_id != s.tenant:
                    continue
                state = state_of[s.message_id]
                if state is DeliveryState.FAILED or _RANK[s.state] <= _RANK[state]:
                    continue
                updates.append(DeliveryUpdate(s.tenant, s.message_id, s.state.value, s.provider_message_id, s.error))
                if s.state is DeliveryState.FAILED:
                    failures.append(
                        Lifecycle(
                            s.tenant,
                            row.customer_id,
                            row.conversation_id,
                            "delivery_failed",
                            s.time,
                            {"message_id": s.message_id, "channel": s.channel.value, "error": s.error},
                        )
                    )
                state_of[s.message_id] = s.state
            await u.replies.set_delivery_states(updates)
            await u.conversations.add_lifecycle(failures)
