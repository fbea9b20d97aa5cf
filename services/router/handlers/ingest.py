"""The context stage: conversation events in, each sender resolved to a customer, each thread to a
conversation, the message stored and the conversation routed. One batch of events = one transaction.

Failure policy (with the consume loop's, ``shared/consumer_loop.py``):
- invalid event (bad JSON, unknown schema version, bad identity) → dead-letter topic with the reason, commit;
- duplicate event id (redelivery) → skipped, commit;
- retriable (bus or database unavailable) → raise; nothing is committed and the batch is redelivered;
- anything else (a value no store holds, a bug) → raise; the loop splits the batch down to the event at fault
  and dead-letters it, the others are applied.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from opentelemetry.trace import Span, SpanKind

from services.router.domain.errors import InvalidIdentity
from services.router.domain.identity.graph import Ident
from services.router.domain.identity.normalize import normalize_identity
from services.router.domain.routing.decisions import Decision
from services.router.domain.routing.engine import RoutingEngine
from services.router.handlers import voice
from services.router.handlers.acknowledgements import Acknowledgements, Opened, known_of_opened
from services.router.handlers.agent_feed import feed_record, message_fields, new_agent_event
from services.router.handlers.identity import Inbound, attrs_of_new, claims_of, resolve_customers
from services.router.handlers.metrics import INGESTED
from services.router.handlers.outbox import OutboxRelay
from services.router.handlers.ports import Clock, Store, UnitOfWork
from services.router.handlers.ports.conversations import WantedConversation
from services.router.handlers.ports.records import NewMessage, OpenConversation
from services.router.handlers.routing_owner import Operation, Pass, RoutingPass, RoutingStates
from services.router.handlers.slas import SlaClock
from services.router.handlers.surveys import Surveys
from shared import tracing
from shared.bus import Bus, Outgoing, Record, deadletter
from shared.events import CallStatus, Channel, Direction, EventType, InvalidEvent, decode_event
from shared.ids import new_id
from shared.topics import Topics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BatchResult:
    stored: int
    duplicates: int
    deadlettered: int
    assigned: int


@dataclass(eq=False)
class ContextStage:
    """Conversation events in: identity → customer, thread → conversation, store message, route."""

    repo: Store
    bus: Bus
    relay: OutboxRelay
    clock: Clock
    topics: Topics
    reopen_within: timedelta
    routing: RoutingStates
    sla: SlaClock
    surveys: Surveys
    erasure_key: bytes
    detect_language: Callable[[str], tuple[str, float] | None] | None = None
    acknowledgements: Acknowledgements = field(init=False)  # through the surveys' reply path

    def __post_init__(self) -> None:
        self.acknowledgements = Acknowledgements(self.surveys.replies, self.routing)

    def _parse(self, records: Sequence[Record]) -> tuple[list[Inbound], list[Outgoing], dict[str, Span]]:
        """The batch's valid events (each once), the dead letters of the others, and while tracing a span per
        event continuing the trace its record carries."""
        events: list[Inbound] = []
        spans: dict[str, Span] = {}
        rejects: list[Outgoing] = []
        seen: set[tuple[str, str]] = set()
        for record in records:
            try:
                event = decode_event(record.value)
                identity = normalize_identity(event.sender.kind, event.sender.value)
            except (InvalidEvent, InvalidIdentity) as exc:
                reason = getattr(exc, "reason", str(exc))
                log.warning(
                    "event.rejected",
                    extra={
                        "reason": reason,
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                    },
                )
                rejects.append(deadletter(record, reason, self.topics.deadletter))
                continue
            if (event.tenant, event.id) in seen:
                continue
            seen.add((event.tenant, event.id))
            sender = Ident(event.sender.kind.value, identity, event.sender.verified)
            events.append(Inbound(event, sender, claims_of(event)))
            if tracing.enabled():
                parent = tracing.context_of_headers(record.headers)
                spans[event.id] = tracing.start(
                    "switchboard.context", parent, SpanKind.CONSUMER, channel=event.channel.value
                )
        return events, rejects, spans

    async def handle(self, records: Sequence[Record]) -> BatchResult:
        events, rejects, spans = self._parse(records)
        try:
            return await self._handle(events, rejects, {e: tracing.traceparent(s) or "" for e, s in spans.items()})
        finally:
            for span in spans.values():
                span.end()

    async def _handle(self, events: list[Inbound], rejects: list[Outgoing], traces: Mapping[str, str]) -> BatchResult:
        if rejects:
            await self.bus.publish(rejects)  # durable before the batch's offsets are committed
        now = self.clock()
        duplicates = 0
        assigned = 0
        if events:
            async with self.repo.unit() as u:
                await u.routing.lock_tenants(i.event.tenant for i in events)
                known = await u.conversations.known_event_ids((i.event.tenant, i.event.id) for i in events)
                fresh = await self._not_erased(u, [i for i in events if (i.event.tenant, i.event.id) not in known])
                duplicates = len(events) - len(fresh)
                outbox = await self._store(u, fresh, now, traces)
                assigned = sum(1 for o in outbox if o.topic == self.topics.assignments)
                await u.outbox.add(outbox, now)
            events = fresh
            await self.relay.flush()
        return BatchResult(len(events), duplicates, len(rejects), assigned)

    async def _not_erased(self, u: UnitOfWork, batch: list[Inbound]) -> list[Inbound]:
        """Drop events of erased customers received before their erasure (a Kafka replay, or in flight then)."""
        if not batch:
            return batch
        erased = await u.customers.erased_senders(
            self.erasure_key, ((i.event.tenant, i.sender.kind, i.sender.value) for i in batch)
        )
        if not erased:
            return batch
        kept = []
        for i in batch:
            when = erased.get((i.event.tenant, i.sender.kind, i.sender.value))
            if when is not None and i.event.received_at <= when:
                log.info("event.erased_sender", extra={"tenant": i.event.tenant, "event_id": i.event.id})
                continue
            kept.append(i)
        return kept

    async def _store(
        self, u: UnitOfWork, fresh: list[Inbound], now: datetime, traces: Mapping[str, str]
    ) -> list[Outgoing]:
        if not fresh:
            return []
        resolved = await resolve_customers(u, fresh, now)
        customers, created, unchanged = resolved.customers, resolved.created, resolved.unchanged
        # a bare score sent back after a survey answers it (stored on the surveyed conversation, not reopening it)
        texts = [
            (i.event.tenant, i.event.channel.value, customers[n], i.event.content.text or "")
            for n, i in enumerate(fresh)
        ]
        answers = await self.surveys.match_replies(u, texts, now)
        calls = {n for n, i in enumerate(fresh) if i.event.type is EventType.CALL_STATUS}
        wanted: dict[str, WantedConversation] = {}
        for n, (i, cid) in enumerate(zip(fresh, customers, strict=True)):
            if n not in answers and n not in calls:
                # a conversation opened now is written touched by its customer's message
                wanted[cid] = WantedConversation(i.event.tenant, i.event.channel.value, i.event.received_at)
        plan = await u.conversations.plan_conversations(wanted, now, self.reopen_within, created=created.keys())
        convs, lifecycle = plan.open, plan.lifecycle
        by_id = {c.id: c for c in convs.values()}
        started = {n.id for n in plan.new}
        messages: list[NewMessage] = []
        last: dict[str, tuple[str, datetime]] = {}
        windows: dict[str, float] = {}  # callbacks: not before the start of their window
        written: dict[str, str] = {}  # customer → what they wrote in this batch (their language, if unknown)
        automated: dict[str, set[str | None]] = {}  # conversation → who wrote this batch's messages (None: a person)
        holders = {c.id: c.agent_id for c in convs.values() if c.agent_id is not None}
        said: dict[tuple[str, str], tuple[NewMessage, Ident]] = {}  # conversations opened now: the last inbound
        for n, (item, customer_id) in enumerate(zip(fresh, customers, strict=True)):
            if n in calls:
                continue
            e = item.event
            answer = answers.get(n)
            conversation_id = answer.conversation_id if answer else convs[customer_id].id
            message = NewMessage(
                id=new_id(),
                tenant_id=e.tenant,
                event_id=e.id,
                conversation_id=conversation_id,
                customer_id=customer_id,
                channel=e.channel.value,
                direction=e.direction.value,
                channel_message_id=e.channel_message_id,
                sender_kind=e.sender.kind.value,
                subject=e.content.subject,
                text=e.content.text,
                sent_at=e.sent_at,
                received_at=e.received_at,
                thread_ref=e.thread_ref,
                attachments=[a.model_dump() for a in e.content.attachments],
                sanitized=e.sanitized.model_dump() if e.sanitized else None,
            )
            messages.append(message)
            if conversation_id in started and message.direction == Direction.INBOUND.value:
                said[(conversation_id, message.channel)] = (message, item.sender)
            if answer is None:
                last[conversation_id] = (e.channel.value, e.received_at)
                automated.setdefault(conversation_id, set()).add(e.automated.value if e.automated else None)
                if e.content.text:
                    written[customer_id] = e.content.text
            if e.call is not None and e.call.status is CallStatus.CALLBACK_REQUESTED and e.call.window_start:
                windows[conversation_id] = e.call.window_start.timestamp()
        # conversations without an agent (new, reopened, or waiting) go to the tenant's routing engine; a call
        # (or callback request) on a conversation moves its work to the voice channel. Routed before the new
        # conversations are written, so each is inserted once, where routing put it, never updated after.
        waiting = [c for c in convs.values() if c.agent_id is None]
        answered = [c for c in convs.values() if c.awaiting == "customer"]
        on_phone = [c for c in convs.values() if c.id in last and last[c.id][0] == Channel.VOICE.value]
        routed = {c.customer_id: c.tenant_id for c in (*waiting, *answered)}
        stored = routed.keys() - created.keys() - unchanged.keys()
        attrs = await u.customers.customer_attrs((routed[c], c) for c in stored)
        attrs.update((cid, dict(unchanged[cid])) for cid in routed.keys() & unchanged.keys())
        attrs.update((cid, attrs_of_new(n)) for cid, n in created.items())
        await self._detect_languages(u, attrs, {(c.tenant_id, c.customer_id) for c in waiting}, written, now)
        # sticky: who helped last (a customer created now was helped by nobody yet)
        helped = [(c.tenant_id, c.customer_id) for c in waiting if c.customer_id not in created]
        previous = await u.customers.last_agents(helped)
        ops: dict[str, list[Operation]] = {}
        for c in waiting:
            channel = last[c.id][0] if c.id in last else c.channel
            wanted_attrs = {**attrs.get(c.customer_id, {}), "not_before": windows.get(c.id)}
            ops.setdefault(c.tenant_id, []).append(_arrive(c.id, channel, wanted_attrs, previous.get(c.customer_id)))
        for c in on_phone:
            ops.setdefault(c.tenant_id, []).append(_switch(c.id, Channel.VOICE.value))
        causes = {  # the last message of each conversation routed now: its offer or assignment names it
            m.conversation_id: {
                "event_id": m.event_id,
                "received_at": m.received_at.isoformat(),
                **_trace(traces, m.event_id),
            }
            for m in messages
        }
        running = RoutingPass(now)
        await self.routing.run(u, running, _passes(ops, waiting))
        # a call status reads whether its conversation waits from the stored row, as it was before this batch's
        # routing: the new conversations of a batch with calls are written unplaced (routing's writes follow)
        placed = self.routing.placements(running, [n.id for n in plan.new]) if not calls else {}
        opened = started | {e.conversation_id for e in lifecycle if e.kind == "reopened"}
        clocks = await self.sla.opening(u, [self.sla.started(by_id[i], attrs, last) for i in opened if i in by_id], now)
        await u.conversations.insert_conversations(plan.new, placed, clocks)  # a new one with its SLA clocks
        await u.sla_timers.start([k for k in clocks if k.conversation_id not in started])  # a reopened one's
        await u.conversations.add_lifecycle(lifecycle)
        # each conversation opened now hears back (acknowledgements.py): written with the batch's messages, but
        # for a batch with calls, whose statuses read the messages first (and may move the conversations' work)
        new = [c for c in convs.values() if c.id in started and c.id in last]
        acks, known = [_opened(c, attrs, last, automated) for c in new], known_of_opened(new, created, said, now)
        acked = None if calls else await self.acknowledgements.prepare(u, acks, now, known)
        await u.conversations.insert_messages([*messages, *(acked.messages if acked else ())], now)
        touched = {(by_id[c].tenant_id, c): v for c, v in last.items() if c not in started}
        await u.conversations.touch_conversations(touched)
        feed = [
            new_agent_event(
                m.tenant_id,
                holder,
                "message",
                m.conversation_id,
                now,
                **message_fields(m),
                **_trace(traces, m.event_id),
            )
            for m in messages
            if (holder := holders.get(m.conversation_id)) is not None
        ]
        outbox: list[Outgoing] = [
            feed_record(self.topics.assignments, row["tenant_id"], row) for row in await u.feeds.add(feed)
        ]

        # calls' progress (after the messages: a call and its end may share a batch)
        outcomes = await voice.store_call_statuses(u, [(fresh[n].event, customers[n]) for n in sorted(calls)], now)
        after_calls: dict[str, list[Operation]] = {}
        abandoned: dict[str, list[str]] = {}
        for o in outcomes:
            if o.answered:  # a call picked up is the first response (the clocks stop, the KPI counts it)
                await u.replies.record_agent_reply(o.tenant_id, o.conversation_id, now, pending=False)
                await self.sla.agent_replied(u, o.tenant_id, o.conversation_id, now, pending=False)
            if o.abandoned:
                abandoned.setdefault(o.tenant_id, []).append(o.conversation_id)
                after_calls.setdefault(o.tenant_id, []).append(_leave(o.conversation_id))
            elif o.no_answer_agent:
                after_calls.setdefault(o.tenant_id, []).append(_ring_out(o.no_answer_agent, o.conversation_id))
            elif o.back_to:
                after_calls.setdefault(o.tenant_id, []).append(_switch(o.conversation_id, o.back_to))
        for tenant_id in sorted(abandoned):
            await voice.abandon(u, tenant_id, abandoned[tenant_id], now)
        await self.routing.run(u, running, _passes(after_calls, waiting))
        outbox += (await self.routing.finish(u, running, causes, placed)).outbox
        for tenant_id, tenant_abandoned in abandoned.items():
            await self.sla.resolved(u, tenant_id, tenant_abandoned, now)
        await self.sla.customer_wrote(u, [self.sla.started(c, attrs, last) for c in answered], now)
        if acked is None:
            acked = await self.acknowledgements.prepare(u, acks, now, known)
            await u.conversations.insert_messages(acked.messages, now)
        await self.acknowledgements.note(u, acked, now)
        for m in messages:
            INGESTED.labels(channel=m.channel).inc()
        return [*outbox, *acked.records]

    async def _detect_languages(
        self,
        u: UnitOfWork,
        attrs: dict[str, dict[str, Any]],
        customers: set[tuple[str, str]],
        written: dict[str, str],
        now: datetime,
    ) -> None:
        """A waiting customer (tenant, customer id) whose language nobody set: detected from what they wrote, if
        confidently, and routed by it from now on (never over a language the app or an agent set)."""
        if self.detect_language is None:
            return
        detected: dict[tuple[str, str], tuple[str, float]] = {}
        for tenant_id, customer_id in customers:
            if customer_id in written and customer_id in attrs and not attrs[customer_id].get("language"):
                found = self.detect_language(written[customer_id])
                if found is not None:
                    detected[(tenant_id, customer_id)] = found
                    attrs[customer_id]["language"] = found[0]
        await u.customers.set_detected_languages(detected, now)


def _passes(ops: Mapping[str, list[Operation]], waiting: Sequence[OpenConversation]) -> dict[str, Pass]:
    """Each tenant's operations, with the conversations they arrive (a rebuild leaves those to them)."""
    return {
        tenant_id: Pass(tenant_ops, arriving={c.id for c in waiting if c.tenant_id == tenant_id})
        for tenant_id, tenant_ops in ops.items()
    }


def _opened(
    c: OpenConversation, attrs: dict[str, dict[str, Any]], last: dict[str, Any], automated: dict[str, set[str | None]]
) -> Opened:
    """What a new conversation's acknowledgement depends on; ``automated`` only if no person wrote any of it."""
    kinds = automated.get(c.id, {None})
    customer = attrs.get(c.customer_id, {})
    return Opened(
        c.tenant_id,
        c.id,
        last[c.id][0],
        None if None in kinds else min(k for k in kinds if k is not None),
        customer.get("language"),
        customer.get("tier"),
        c.queue_id,
        c.customer_id,
    )


def _arrive(conversation_id: str, channel: str, attrs: dict[str, Any], previous: str | None) -> Operation:
    """A conversation needs an agent; the agent who last helped the customer is its sticky preference."""
    return lambda engine, t: engine.arrive(conversation_id, channel, attrs, t, previous_agent=previous)


def _switch(conversation_id: str, channel: str) -> Operation:
    return lambda engine, t: engine.switch_channel(conversation_id, channel, t)


def _leave(conversation_id: str) -> Operation:
    """An abandoned call: out of the queue at once."""
    return lambda engine, t: engine.resolve(conversation_id, t) if engine.work(conversation_id) else []


def _ring_out(agent_id: str, conversation_id: str) -> Operation:
    """The agent a call was put through to did not pick up: the next eligible agent gets it."""

    def op(engine: RoutingEngine, t: float) -> list[Decision]:
        work = engine.work(conversation_id)
        if work is None or work.agent_id != agent_id:
            return []  # already moved on (a redelivered status, or the agent went offline meanwhile)
        return engine.decline(agent_id, conversation_id, t, reason="no_answer", offered_only=False)

    return op


def _trace(traces: Mapping[str, str], event_id: str) -> dict[str, str]:
    """The ``traceparent`` a feed event caused by this message carries, while tracing."""
    value = traces.get(event_id)
    return {"traceparent": value} if value else {}
