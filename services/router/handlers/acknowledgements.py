"""Acknowledgements with a promise, sent by the context stage in the transaction that opens the conversation:
the customer hears that their message arrived and when to expect an answer (``domain/acknowledgement.py``).

The message goes out like an agent's reply (``ReplyCommands.send``: stored, outbox, the channel's connector),
from ``system``, so it never counts as the first response and stops no SLA clock. At most one per
conversation: its idempotency key (``acknowledgement:<conversation id>``) is looked up before sending, under
the tenant lock the context stage holds, and ``messages`` keeps it unique per tenant; a batch that rolls back
sends nothing. The message carries what it promised (``NewMessage.acknowledgement``), which makes it the
"acknowledged" entry on the timeline as well as its own: no row of its own. A withdrawn consent, an address the
customer cannot be reached at, or a message no person wrote skips it, and the timeline says why.

The queue's business hours decide the promise here, as they decide the SLA deadline; routing's
``AutoAcknowledged`` decision (a conversation placed while its queue is closed) stays the timeline note and
the caller's closed-hours prompt, and is told the same opening time (``BusinessHours.next_open``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from services.router.domain import acknowledgement as ack
from services.router.domain.consent import ConsentWithdrawn, Purpose
from services.router.domain.errors import InvalidCommand
from services.router.domain.identity.graph import Ident
from services.router.domain.routing.engine import RoutingEngine
from services.router.domain.routing.specs import QueueSpec
from services.router.domain.sla import TimerKind, target_s
from services.router.handlers.ports import UnitOfWork
from services.router.handlers.ports.conversations import Note
from services.router.handlers.ports.records import LastInbound, NewCustomer, NewMessage, OpenConversation, ReplyTarget
from services.router.handlers.queues import tenant_queues
from services.router.handlers.replies import NOTHING_KNOWN, RECIPIENT_KIND, Known, ReplyCommands, Send
from services.router.handlers.routing_owner import RoutingStates
from shared.bus import Outgoing
from shared.events import Channel

log = logging.getLogger(__name__)

AUTHOR = "system"
HANDLE_TIME_FOR_S = 30.0


@dataclass(frozen=True, slots=True)
class Opened:
    """A conversation a customer's message opened, with what its acknowledgement depends on."""

    tenant_id: str
    conversation_id: str
    channel: str  # where the customer wrote
    automated: str | None  # set if no person wrote any of its messages (shared/events.py Automated)
    language: str | None  # the customer's
    tier: str | None
    queue_id: str | None  # as stored, if routing holds no work for it
    customer_id: str | None = None  # whose it is, if the caller knows (its timeline notes need no lookup)


@dataclass(frozen=True, slots=True)
class Acked:
    """Acknowledgements decided, not yet written (``Acknowledgements.prepare``)."""

    messages: list[NewMessage]  # each with its promise, its "acknowledged" timeline entry
    records: list[Outgoing]
    notes: dict[str, list[Note]]  # by tenant: why one was not sent
    owners: dict[tuple[str, str], str]  # (tenant, conversation) → customer, where known
    sent: dict[str, int]  # by tenant


def key_of(conversation_id: str) -> str:
    """The acknowledgement's idempotency key: one per conversation."""
    return f"acknowledgement:{conversation_id}"


@dataclass(eq=False)
class Acknowledgements:
    replies: ReplyCommands
    routing: RoutingStates
    # tenant → (read at, average handle time): an expected wait's input, an average over the tenant's last
    # 200 handled conversations, read at most every HANDLE_TIME_FOR_S rather than by every batch
    _handle_s: dict[str, tuple[float, float | None]] = field(default_factory=dict, init=False)

    async def _handle_times(self, u: UnitOfWork, tenants: Sequence[str], now: datetime) -> dict[str, float]:
        at = now.timestamp()
        stale = [x for x in tenants if (held := self._handle_s.get(x)) is None or at - held[0] >= HANDLE_TIME_FOR_S]
        if stale:
            read = await u.routing.average_handle_s(stale)
            self._handle_s.update((x, (at, read.get(x))) for x in stale)
        return {x: v for x in tenants if (v := self._handle_s[x][1]) is not None}

    async def acknowledge(
        self, u: UnitOfWork, opened: Sequence[Opened], now: datetime, known: Known = NOTHING_KNOWN
    ) -> int:
        """Send each new conversation its acknowledgement, in the caller's transaction: planned tenant by
        tenant, then read and written for all tenants at once. Returns how many went. ``known``: what the caller
        holds about the conversations (``ReplyCommands.send_many``); one it opened in this transaction
        (``Known.opened``) has no acknowledgement to look up."""
        acked = await self.prepare(u, opened, now, known)
        await u.conversations.insert_messages(acked.messages, now)
        await u.outbox.add(acked.records, now)
        return await self.note(u, acked, now)

    async def note(self, u: UnitOfWork, acked: Acked, now: datetime) -> int:
        """The timeline notes of the acknowledgements ``prepare`` skipped, written after its messages (each sent
        one is its own "acknowledged" entry). Returns how many acknowledgements went."""
        await u.conversations.add_conversation_notes(acked.notes, now, acked.owners)
        for tenant_id, count in sorted(acked.sent.items()):
            log.info("acknowledgements.sent", extra={"tenant": tenant_id, "count": count})
        return sum(acked.sent.values())

    async def prepare(
        self, u: UnitOfWork, opened: Sequence[Opened], now: datetime, known: Known = NOTHING_KNOWN
    ) -> Acked:
        """``acknowledge``'s reads and decisions, nothing written: the caller writes ``Acked.messages`` and
        ``Acked.records`` (with its own, one statement each), then calls ``note``."""
        if not opened:
            return Acked([], [], {}, {}, {})
        sent_before = await u.conversations.known_event_ids(
            (o.tenant_id, key_of(o.conversation_id))
            for o in opened
            if (o.tenant_id, o.conversation_id) not in known.opened
        )
        todo: dict[str, list[Opened]] = {}
        for o in opened:
            if (o.tenant_id, key_of(o.conversation_id)) not in sent_before:
                todo.setdefault(o.tenant_id, []).append(o)
        # an expected wait needs the handle time (of tenants with work waiting and someone online): one read
        engines = {tenant_id: self.routing.current(tenant_id) for tenant_id in todo}
        staffed = [
            tenant_id
            for tenant_id, e in engines.items()
            if e is not None
            and any((w := e.work(o.conversation_id)) is not None and w.agent_id is None for o in todo[tenant_id])
            and any(e.online_counts().values())
        ]
        handle_s = await self._handle_times(u, staffed, now)
        notes: dict[str, list[Note]] = {}
        planned: list[_Planned] = []
        for tenant_id in sorted(todo):
            engine = engines[tenant_id]
            queues = await tenant_queues(u, self.routing, tenant_id)
            waits = _Waits(engine, handle_s.get(tenant_id))
            mine = notes.setdefault(tenant_id, [])
            for o in todo[tenant_id]:
                plan = _plan(o, engine, queues, waits, now)
                if isinstance(plan, _Planned):
                    planned.append(plan)
                elif plan is not None:
                    mine.append(plan)
        prepared = await self.replies.prepare_many(u, [(p.opened.tenant_id, p.send) for p in planned], now, known)
        sent: dict[str, int] = {}
        promises: dict[str, dict[str, Any]] = {}  # by message id
        for p, out in zip(planned, prepared.outcomes, strict=True):
            o = p.opened
            if isinstance(out, ConsentWithdrawn):
                notes[o.tenant_id].append((o.conversation_id, "acknowledgement_skipped", out.refusal.timeline_data()))
                continue
            if isinstance(out, InvalidCommand):  # no connector for the channel, or no address on it
                notes[o.tenant_id].append(
                    (o.conversation_id, "acknowledgement_skipped", {"reason": "unreachable", "detail": str(out)})
                )
                continue
            if isinstance(out, Exception):
                raise out
            sent[o.tenant_id] = sent.get(o.tenant_id, 0) + 1
            # the "acknowledged" entry's data but the message's own id and channel (where the customer wrote)
            promises[out["message_id"]] = {
                "language": p.language,
                "promised_at": p.promise.due_at.astimezone(UTC).isoformat(),
                "opens_at": p.promise.opens_at.astimezone(UTC).isoformat() if p.promise.opens_at else None,
                "expected_wait_s": p.wait,
                "queue_id": p.queue_id,
            }
        messages = [replace(m, acknowledgement=promises.get(m.id)) for m in prepared.messages]
        owners = {(o.tenant_id, o.conversation_id): o.customer_id for o in opened if o.customer_id is not None}
        return Acked(messages, prepared.records, notes, owners, sent)


def known_of_opened(
    new: Sequence[OpenConversation],
    created: Mapping[str, NewCustomer],
    said: Mapping[tuple[str, str], tuple[NewMessage, Ident]],
    now: datetime,
) -> Known:
    """What the acknowledgements of the conversations opened now would read back, as this batch has it: every
    message of such a conversation is in the batch, and a customer created now has the default consent and, on
    the channel they wrote on, the address they wrote from."""
    lasts = {
        key: LastInbound(m.channel_message_id, m.thread_ref, m.subject, m.received_at, now)
        for key, (m, _) in said.items()
    }
    # an existing customer's consent and addresses are read
    theirs = {c.id: c for c in new if c.customer_id in created}
    targets = {(c.tenant_id, c.id): ReplyTarget(c.customer_id, c.channel, {}) for c in theirs.values()}
    addresses = {
        (c.customer_id, sender.kind): sender.value
        for (conversation_id, channel), (_, sender) in said.items()
        if (c := theirs.get(conversation_id)) is not None and sender.kind == RECIPIENT_KIND[Channel(channel)].value
    }
    return Known(targets, lasts, addresses, frozenset((c.tenant_id, c.id) for c in new))


@dataclass(frozen=True, slots=True)
class _Planned:
    """An acknowledgement to send, and what its "acknowledged" timeline entry says."""

    opened: Opened
    send: Send
    language: str
    promise: ack.Promise
    wait: float | None
    queue_id: str | None


def _plan(
    o: Opened, engine: RoutingEngine | None, queues: Mapping[str, QueueSpec], waits: _Waits, now: datetime
) -> _Planned | Note | None:
    """The acknowledgement of one new conversation, or the note of why it gets none (None: nothing to note)."""
    work = engine.work(o.conversation_id) if engine is not None else None
    queue = queues.get(work.queue_id if work is not None else o.queue_id or "")
    options = _options(queue)
    skipped = ack.skip_reason(o.channel, o.automated, options)
    if skipped is not None:
        if o.automated:
            return (o.conversation_id, "acknowledgement_skipped", {"reason": "automated", "kind": o.automated})
        return None
    hours = queue.hours if queue is not None else None
    wait = None
    if work is not None and work.agent_id is None and queue is not None and (hours is None or hours.is_open(now)):
        wait = waits.expected_s(queue.id)
    target = target_s(TimerKind.FIRST_RESPONSE, o.channel, o.tier, queue.sla if queue else None)
    promise = ack.promise(now, target, hours, wait)
    language = ack.language_for(o.language, options)
    body = ack.text(promise, language, options)
    send = Send(
        o.conversation_id,
        body,
        Channel(o.channel),
        AUTHOR,
        None,
        Purpose.ACKNOWLEDGEMENT,
        key_of(o.conversation_id),
    )
    return _Planned(o, send, language, promise, wait, queue.id if queue else None)


class _Waits:
    """A tenant's expected waits, its engine's counts read once per batch and only if needed."""

    def __init__(self, engine: RoutingEngine | None, handle_s: float | None) -> None:
        self.engine = engine
        self._handle_s = handle_s
        self._counts: tuple[dict[str, int], dict[str, int]] | None = None

    def expected_s(self, queue_id: str) -> float | None:
        if self.engine is None:
            return None
        if self._counts is None:
            self._counts = (self.engine.waiting_counts(), self.engine.online_counts())
        waiting, online = self._counts
        return ack.expected_wait_s(waiting.get(queue_id, 0), online.get(queue_id, 0), self._handle_s)


def _options(queue: QueueSpec | None) -> ack.Options:
    try:
        return ack.options_of(queue.acknowledgement if queue is not None else None)
    except ValueError:  # checked when saved; a configuration from before the check gets the defaults
        log.warning("acknowledgements.invalid_options", extra={"queue_id": queue.id if queue else None})
        return ack.Options()
