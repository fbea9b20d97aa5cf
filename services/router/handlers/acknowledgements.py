"""Acknowledgements with a promise, sent by the context stage in the transaction that opens the conversation:
the customer hears that their message arrived and when to expect an answer (``domain/acknowledgement.py``).

The message goes out like an agent's reply (``ReplyCommands.send``: stored, outbox, the channel's connector),
from ``system``, so it never counts as the first response and stops no SLA clock. At most one per
conversation: its idempotency key (``acknowledgement:<conversation id>``) is looked up before sending, under
the tenant lock the context stage holds, and ``messages`` keeps it unique per tenant; a batch that rolls back
sends nothing. A withdrawn consent, an address the customer cannot be reached at, or a message no person wrote
skips it, and the timeline says why.

The queue's business hours decide the promise here, as they decide the SLA deadline; routing's
``AutoAcknowledged`` decision (a conversation placed while its queue is closed) stays the timeline note and
the caller's closed-hours prompt, and is told the same opening time (``BusinessHours.next_open``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.router.domain import acknowledgement as ack
from services.router.domain.consent import ConsentWithdrawn, Purpose
from services.router.domain.errors import InvalidCommand
from services.router.domain.routing.engine import RoutingEngine
from services.router.domain.routing.specs import QueueSpec
from services.router.domain.sla import TimerKind, target_s
from services.router.handlers.ports import UnitOfWork
from services.router.handlers.queues import tenant_queues
from services.router.handlers.replies import ReplyCommands, Send
from services.router.handlers.routing_owner import RoutingStates
from shared.events import Channel

log = logging.getLogger(__name__)

AUTHOR = "system"


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


def key_of(conversation_id: str) -> str:
    """The acknowledgement's idempotency key: one per conversation."""
    return f"acknowledgement:{conversation_id}"


@dataclass(eq=False)
class Acknowledgements:
    replies: ReplyCommands
    routing: RoutingStates

    async def acknowledge(self, u: UnitOfWork, opened: Sequence[Opened], now: datetime) -> int:
        """Send each new conversation its acknowledgement, in the caller's transaction. Returns how many went."""
        if not opened:
            return 0
        sent_before = await u.conversations.known_event_ids((o.tenant_id, key_of(o.conversation_id)) for o in opened)
        sent = 0
        for tenant_id in sorted({o.tenant_id for o in opened}):
            todo = [
                o
                for o in opened
                if o.tenant_id == tenant_id and (tenant_id, key_of(o.conversation_id)) not in sent_before
            ]
            if todo:
                sent += await self._tenant(u, tenant_id, todo, now)
        return sent

    async def _tenant(self, u: UnitOfWork, tenant_id: str, opened: list[Opened], now: datetime) -> int:
        engine = self.routing.current(tenant_id)
        queues = await tenant_queues(u, self.routing, tenant_id)
        waits = _Waits(u, tenant_id, engine)
        notes: list[tuple[str, str, dict[str, Any]]] = []
        planned: list[tuple[Opened, Send, str, ack.Promise, float | None, str | None]] = []
        sent = 0
        for o in opened:
            work = engine.work(o.conversation_id) if engine is not None else None
            queue = queues.get(work.queue_id if work is not None else o.queue_id or "")
            options = _options(queue)
            skipped = ack.skip_reason(o.channel, o.automated, options)
            if skipped is not None:
                if o.automated:
                    notes.append(
                        (o.conversation_id, "acknowledgement_skipped", {"reason": "automated", "kind": o.automated})
                    )
                continue
            hours = queue.hours if queue is not None else None
            wait = None
            if (
                work is not None
                and work.agent_id is None
                and queue is not None
                and (hours is None or hours.is_open(now))
            ):
                wait = await waits.expected_s(queue.id)
            target = target_s(TimerKind.FIRST_RESPONSE, o.channel, o.tier, queue.sla if queue else None)
            promise = ack.promise(now, target, hours, wait)
            language = ack.language_for(o.language, options)
            body = ack.text(promise, language, options)
            planned.append(
                (
                    o,
                    Send(
                        o.conversation_id,
                        body,
                        Channel(o.channel),
                        AUTHOR,
                        None,
                        Purpose.ACKNOWLEDGEMENT,
                        key_of(o.conversation_id),
                    ),
                    language,
                    promise,
                    wait,
                    queue.id if queue else None,
                )
            )
        outcomes = await self.replies.send_many(u, tenant_id, [send for _, send, *_ in planned], now)
        for (o, _, language, promise, wait, queue_id), out in zip(planned, outcomes, strict=True):
            if isinstance(out, ConsentWithdrawn):
                notes.append((o.conversation_id, "acknowledgement_skipped", out.refusal.timeline_data()))
                continue
            if isinstance(out, InvalidCommand):  # no connector for the channel, or no address on it
                notes.append(
                    (o.conversation_id, "acknowledgement_skipped", {"reason": "unreachable", "detail": str(out)})
                )
                continue
            if isinstance(out, Exception):
                raise out
            sent += 1
            notes.append(
                (
                    o.conversation_id,
                    "acknowledged",
                    {
                        "message_id": out["message_id"],
                        "channel": o.channel,
                        "language": language,
                        "promised_at": promise.due_at.astimezone(UTC).isoformat(),
                        "opens_at": promise.opens_at.astimezone(UTC).isoformat() if promise.opens_at else None,
                        "expected_wait_s": wait,
                        "queue_id": queue_id,
                    },
                )
            )
        await u.conversations.add_conversation_notes(tenant_id, notes, now)
        if sent:
            log.info("acknowledgements.sent", extra={"tenant": tenant_id, "count": sent})
        return sent


class _Waits:
    """A tenant's expected waits, read once per batch and only if needed (the handle time is a query)."""

    def __init__(self, u: UnitOfWork, tenant_id: str, engine: RoutingEngine | None) -> None:
        self.u = u
        self.tenant_id = tenant_id
        self.engine = engine
        self._loaded = False
        self._waiting: dict[str, int] = {}
        self._online: dict[str, int] = {}
        self._handle_s: float | None = None

    async def expected_s(self, queue_id: str) -> float | None:
        if self.engine is None:
            return None
        if not self._loaded:
            self._loaded = True
            self._waiting = self.engine.waiting_counts()
            self._online = self.engine.online_counts()
            if any(self._online.values()):
                self._handle_s = await self.u.routing.average_handle_s(self.tenant_id)
        return ack.expected_wait_s(self._waiting.get(queue_id, 0), self._online.get(queue_id, 0), self._handle_s)


def _options(queue: QueueSpec | None) -> ack.Options:
    try:
        return ack.options_of(queue.acknowledgement if queue is not None else None)
    except ValueError:  # checked when saved; a configuration from before the check gets the defaults
        log.warning("acknowledgements.invalid_options", extra={"queue_id": queue.id if queue else None})
        return ack.Options()
