"""Follow-up after a resolution (``domain/follow_up.py``): scheduled when an agent resolves a conversation in a
queue that has it on, sent by the timer tick when due, on the conversation's channel, in the customer's
language. It goes like an acknowledgement, as ``system`` (so it counts as no response) and at most once per
resolution (its idempotency key). What cannot go (consent withdrawn, no connector or address, WhatsApp's window
closed, the customer already wrote again) is skipped and the timeline says why. A reply reopens the
conversation (``adapters/db/conversations.py`` counts the reopen window from the follow-up too)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.router.domain import follow_up
from services.router.domain.consent import ConsentWithdrawn, Purpose
from services.router.domain.errors import InvalidCommand
from services.router.domain.routing.specs import QueueSpec
from services.router.handlers.due_sweep import sweep_due
from services.router.handlers.outbox import OutboxWriter
from services.router.handlers.ports import UnitOfWork
from services.router.handlers.ports.follow_ups import DueFollowUp
from services.router.handlers.queues import tenant_queues
from services.router.handlers.replies import ReplyCommands, Send
from services.router.handlers.routing_owner import RoutingStates

log = logging.getLogger(__name__)

AUTHOR = "system"
BATCH = 500  # follow-ups sent per tenant and transaction; a tick takes the rest on the next round


def key_of(due: DueFollowUp) -> str:
    """The follow-up's idempotency key: one per resolution (a conversation resolved again gets another)."""
    return f"follow_up:{due.conversation_id}:{due.resolved_at.isoformat()}"


@dataclass(eq=False)
class FollowUpSender(OutboxWriter):
    routing: RoutingStates
    replies: ReplyCommands

    async def schedule(self, u: UnitOfWork, tenant_id: str, conversation_ids: Sequence[str], now: datetime) -> None:
        """On resolutions, in their transaction: check in later on those whose queue follows up. Costs no query
        for a tenant whose queues do not (their configuration is in the routing engine), one read and one write
        for any number of conversations otherwise."""
        queues = await tenant_queues(u, self.routing, tenant_id)
        if not any(q.follow_up for q in queues.values()):
            return
        due: dict[str, datetime] = {}
        for conversation_id, (queue_id, channel) in (await u.follow_ups.targets(tenant_id, conversation_ids)).items():
            queue = queues.get(queue_id or "")
            options = _options(queue)
            if options is None or follow_up.skip_reason(channel, options) is not None:
                continue
            due[conversation_id] = follow_up.due_at(now, options, queue.hours if queue else None)
        if due:
            await u.follow_ups.schedule(tenant_id, due)

    async def tick(self) -> int:
        """Send what is due. Returns how many went."""
        return await sweep_due(
            self.repo, self.relay, self.clock(), lambda u, now: u.follow_ups.tenants_due(now), self._tenant
        )

    async def _tenant(self, tenant_id: str, now: datetime) -> int:
        async with self.repo.unit() as u:
            await u.routing.lock_tenants([tenant_id])  # tenant first, then conversation rows: every writer's order
            due = await u.follow_ups.claim_due(tenant_id, now, BATCH)
            if not due:
                return 0
            queues = await tenant_queues(u, self.routing, tenant_id)
            notes: list[tuple[str, str, dict[str, Any]]] = []
            planned: list[tuple[DueFollowUp, str, Send]] = []
            for d in due:
                options = _options(queues.get(d.queue_id or ""))
                reason = _skipped(d, options)
                if reason is not None or options is None:  # (never None with no options: said for the type checker)
                    notes.append((d.conversation_id, "follow_up_skipped", {"reason": reason}))
                    continue
                language = options.language_for(d.language)
                send = Send(d.conversation_id, options.text(language), None, AUTHOR, None, Purpose.FOLLOW_UP, key_of(d))
                planned.append((d, language, send))
            outcomes = await self.replies.send_many(u, [(tenant_id, s) for _, _, s in planned], now)
            sent: list[str] = []
            for (d, language, _), out in zip(planned, outcomes, strict=True):
                if isinstance(out, ConsentWithdrawn):
                    notes.append((d.conversation_id, "follow_up_skipped", out.refusal.timeline_data()))
                elif isinstance(out, InvalidCommand):  # no connector or address, WhatsApp's window closed
                    notes.append(
                        (d.conversation_id, "follow_up_skipped", {"reason": "unreachable", "detail": str(out)})
                    )
                elif isinstance(out, Exception):
                    raise out
                else:
                    sent.append(d.conversation_id)
                    data = {"message_id": out["message_id"], "channel": d.channel, "language": language}
                    notes.append((d.conversation_id, "followed_up", data))
            await u.follow_ups.finish(tenant_id, [d.conversation_id for d in due], sent, now)
            await u.conversations.add_conversation_notes({tenant_id: notes}, now)
        log.info("follow_ups.sent", extra={"tenant": tenant_id, "count": len(sent), "due": len(due)})
        return len(sent)


def _skipped(due: DueFollowUp, options: follow_up.Options | None) -> str | None:
    """Why a due follow-up is not sent before any message is tried (None: it is tried)."""
    if due.wrote_again:
        return "wrote_again"
    if options is None:  # the queue turned follow-up off since the resolution
        return "disabled"
    return follow_up.skip_reason(due.channel, options)


def _options(queue: QueueSpec | None) -> follow_up.Options | None:
    if queue is None:
        return None
    try:
        return follow_up.options_of(queue.follow_up)
    except ValueError:  # checked when saved; a configuration from before the check has none
        log.warning("follow_ups.invalid_options", extra={"queue_id": queue.id})
        return None
