"""SLA clocks on conversations, kept in the database (running on the conversation's row, settled into
``sla_timers``) so that they survive restarts and run in whichever replica ticks first: a clock's ``warned_at`` /
``breached_at`` are set in the transaction that publishes its event (rows locked, SKIP LOCKED), so none fires
twice and none is lost.

Clocks: first response (opened → first agent reply), next response (customer writes after an answer → next
agent reply), resolution (opened → resolved, paused while pending on the customer). Deadlines count the
queue's business hours when it has them. On warning and breach, the queue's ``sla.on_warning`` /
``sla.on_breach`` actions go to the tenant's routing owner on the command log (raise priority, move to an
escalation queue), and
the event goes to the conversation's agent, to the desk's supervisors feed, to ``routing.assignments`` (so to
webhooks) and to the timeline."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Coroutine, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.router.domain.routing.queue_config import queue_spec
from services.router.domain.routing.specs import QueueSpec
from services.router.domain.sla import (
    Started,
    TimerKind,
    actions,
    deadlines,
    met,
    remaining_s,
    resumed,
    slot,
    target_s,
)
from services.router.handlers.agent_feed import SUPERVISORS, feed_record, new_agent_event
from services.router.handlers.due_sweep import sweep_due
from services.router.handlers.metrics import SLA_EVENTS
from services.router.handlers.outbox import OutboxWriter
from services.router.handlers.ports import UnitOfWork
from services.router.handlers.ports.records import (
    DueSlaTimer,
    Lifecycle,
    LiveSlaTimer,
    NewSlaTimer,
    OpenConversation,
    SettledSlaTimer,
    SlaDeadlines,
)
from services.router.handlers.routing_owner import RoutingStates
from shared.bus import Outgoing
from shared.ids import new_id
from shared.routing_commands import Command, Escalate

log = logging.getLogger(__name__)


@asynccontextmanager
async def _alongside(work: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """``work`` running as a task while the block runs, let go until it waits on the database first: its
    statement is then on its way, and the database executes it while the block does work of its own (on the
    unit's one connection, statements still go one at a time). Awaited when the block ends, whatever happens."""
    task = asyncio.ensure_future(work)
    await asyncio.sleep(0)
    try:
        yield
    finally:
        await task


@dataclass(eq=False)
class SlaClock(OutboxWriter):
    routing: RoutingStates
    warning_fraction: float

    async def _queues(self, u: UnitOfWork, tenant_id: str) -> dict[str, QueueSpec]:
        engine = self.routing.current(tenant_id)
        if engine is not None:
            return engine.queues
        rules = await u.routing.queue_rules(tenant_id)
        return {q.id: queue_spec(q.id, q.name, q.channels, q.is_default, n, q.routing) for n, q in enumerate(rules)}

    async def _queues_of(self, u: UnitOfWork, tenant_ids: Iterable[str]) -> dict[str, dict[str, QueueSpec]]:
        return {tenant_id: await self._queues(u, tenant_id) for tenant_id in set(tenant_ids)}

    def _clocks(
        self,
        started: Sequence[Started],
        kinds: Sequence[TimerKind],
        queues: Mapping[str, Mapping[str, QueueSpec]],
        now: datetime,
    ) -> list[NewSlaTimer]:
        """The clocks these conversations start now, by their tenants' ``queues`` (nothing written)."""
        return [
            self._timer(
                s.tenant_id, s.conversation_id, kind, s.channel, s.tier, queues[s.tenant_id].get(s.queue_id or ""), now
            )
            for s in started
            for kind in kinds
        ]

    def started(self, c: OpenConversation, attrs: Mapping[str, Mapping[str, Any]], last: Mapping[str, Any]) -> Started:
        """What starts the clocks of a conversation the context stage handles: the channel the customer last
        wrote on, the queue routing holds it in and the customer's tier."""
        engine = self.routing.current(c.tenant_id)
        work = engine.work(c.id) if engine else None
        channel = last[c.id][0] if c.id in last else c.channel
        tier = attrs.get(c.customer_id, {}).get("tier")
        return Started(c.tenant_id, c.id, channel, work.queue_id if work else c.queue_id, tier)

    # -- inside other transactions (context stage, replies, resolve) --------------------------------------------
    async def opening(self, u: UnitOfWork, started: Sequence[Started], now: datetime) -> list[NewSlaTimer]:
        """The clocks of conversations opened or reopened now, first response and resolution (nothing written):
        a conversation opened now is written with them (``Conversations.insert_conversations``), one already
        stored through ``SlaTimers.start``."""
        queues = await self._queues_of(u, (s.tenant_id for s in started))
        return self._clocks(started, (TimerKind.FIRST_RESPONSE, TimerKind.RESOLUTION), queues, now)

    def _timer(
        self,
        tenant_id: str,
        conversation_id: str,
        kind: TimerKind,
        channel: str,
        tier: str | None,
        queue: QueueSpec | None,
        now: datetime,
    ) -> NewSlaTimer:
        seconds = target_s(kind, channel, tier, queue.sla if queue else None)
        d = deadlines(now, seconds, self.warning_fraction, queue.hours if queue else None)
        return NewSlaTimer(
            tenant_id=tenant_id,
            conversation_id=conversation_id,
            kind=kind.value,
            queue_id=queue.id if queue else None,
            target_s=seconds,
            started_at=now,
            warn_at=d.warn_at,
            due_at=d.due_at,
        )

    async def customer_wrote(self, u: UnitOfWork, answered: Sequence[Started], now: datetime) -> None:
        """Customers wrote in conversations where an agent had answered: the next-response clock starts (unless
        a response promise runs already) and a paused resolution clock resumes."""
        if not answered:
            return
        live = await u.sla_timers.live((a.tenant_id, a.conversation_id) for a in answered)
        responding = {(c.tenant_id, c.conversation_id) for c in live if slot(c.kind) == "response"}
        fresh = [a for a in answered if (a.tenant_id, a.conversation_id) not in responding]
        paused = [c for c in live if c.paused_at is not None]
        queues = await self._queues_of(u, {a.tenant_id for a in fresh} | {c.tenant_id for c in paused})
        await u.sla_timers.start(self._clocks(fresh, (TimerKind.NEXT_RESPONSE,), queues, now))
        again: list[SlaDeadlines] = []
        for c in paused:
            queue = queues[c.tenant_id].get(c.queue_id or "")
            d = resumed(now, c.remaining_s or 0.0, c.target_s, self.warning_fraction, queue.hours if queue else None)
            again.append(SlaDeadlines(c.tenant_id, c.conversation_id, c.kind, d.warn_at, d.due_at))
        await u.sla_timers.resume(again)

    async def agent_replied(
        self, u: UnitOfWork, tenant_id: str, conversation_id: str, now: datetime, *, pending: bool
    ) -> None:
        """An answer stops the response clocks; pending on the customer pauses the resolution clock."""
        live = await u.sla_timers.live([(tenant_id, conversation_id)])
        await self._settle(u, [c for c in live if slot(c.kind) == "response"], now)
        if not pending:
            return
        queues = await self._queues(u, tenant_id)
        left: list[tuple[LiveSlaTimer, float]] = []
        for c in live:
            if c.kind == TimerKind.RESOLUTION.value and c.paused_at is None:
                queue = queues.get(c.queue_id or "")
                left.append((c, remaining_s(now, c.due_at, queue.hours if queue else None)))
        await u.sla_timers.pause(left, now)

    async def resolved(self, u: UnitOfWork, tenant_id: str, conversation_ids: Sequence[str], now: datetime) -> None:
        """Every clock of these conversations stops."""
        await self._settle(u, await self.running(u, [(tenant_id, c) for c in conversation_ids]), now)

    @staticmethod
    async def running(u: UnitOfWork, keys: Sequence[tuple[str, str]]) -> list[LiveSlaTimer]:
        """The clocks running on these (tenant, conversation): read before a resolution's write empties their
        slots (``resolve_conversations``), then ``stopped``."""
        return await u.sla_timers.live(keys)

    async def stopped(self, u: UnitOfWork, clocks: Sequence[LiveSlaTimer], now: datetime) -> None:
        """``running``'s clocks, stopped by a resolution whose write emptied their slots: their history."""
        await self._settle(u, clocks, now, emptied=True)

    @staticmethod
    async def _settle(u: UnitOfWork, clocks: Sequence[LiveSlaTimer], now: datetime, emptied: bool = False) -> None:
        await u.sla_timers.settle(
            [SettledSlaTimer(new_id(), c, now, met(c.due_at, c.paused_at is not None, now)) for c in clocks],
            emptied=emptied,
        )

    # -- the tick ----------------------------------------------------------------------------------------------
    async def tick(self) -> int:
        """Fire what is due. Returns how many warnings and breaches fired."""
        return await sweep_due(
            self.repo, self.relay, self.clock(), lambda u, now: u.sla_timers.tenants_due(now), self._fire_tenant
        )

    async def _fire_tenant(self, tenant_id: str, now: datetime) -> int:
        async with self.repo.unit() as u:
            await u.routing.lock_tenants([tenant_id])  # tenant first, then timer rows: the order every writer uses
            rows = await u.sla_timers.claim_due(tenant_id, now, limit=1000)
            if not rows:
                return 0
            queues = await self._queues(u, tenant_id)
            stages = ["breach" if r.breached_at is None and r.due_at <= now else "warning" for r in rows]
            breached = [r for r, stage in zip(rows, stages, strict=True) if stage == "breach"]
            # a breach implies the warning: never fired late after it. The marks are the tick's dearest write (a
            # new version of each wide conversation row): the database makes it while the events are built here.
            async with _alongside(
                u.sla_timers.mark_fired(tenant_id, [r for r in rows if r.warned_at is None], breached, now)
            ):
                feed, notes, escalations = self._fired(tenant_id, rows, stages, queues, now)
            stored = await u.feeds.add(feed)
            async with _alongside(u.conversations.add_lifecycle(notes)):  # written while the records are encoded
                outbox: list[Outgoing] = [feed_record(self.routing.topic, tenant_id, row) for row in stored]
            if escalations:  # the tenant's routing owner acts on it, in order with its other commands
                outbox.append(Command.of(tenant_id, Escalate(escalations=escalations)).record(self.routing.topics))
            await u.outbox.add(outbox, now)
        log.info("sla.fired", extra={"tenant": tenant_id, "count": len(rows)})
        return len(rows)

    @staticmethod
    def _fired(
        tenant_id: str,
        rows: Sequence[DueSlaTimer],
        stages: Sequence[str],
        queues: Mapping[str, QueueSpec],
        now: datetime,
    ) -> tuple[list[dict[str, Any]], list[Lifecycle], dict[str, str | None]]:
        """What the due clocks fire: each on its agent's feed and the supervisors', on the timeline, and the
        queue's escalation where its SLA asks for one."""
        feed: list[dict[str, Any]] = []
        notes: list[Lifecycle] = []
        escalations: dict[str, str | None] = {}
        fired: Counter[tuple[str, str]] = Counter()
        for r, stage in zip(rows, stages, strict=True):
            fired[stage, r.kind] += 1
            data = {"kind": r.kind, "stage": stage, "due_at": r.due_at, "queue_id": r.queue_id}
            for agent in filter(None, (r.agent_id, SUPERVISORS)):
                feed.append(new_agent_event(tenant_id, agent, f"sla.{stage}", r.conversation_id, now, **data))
            notes.append(Lifecycle(tenant_id, r.customer_id, r.conversation_id, f"sla_{stage}", now, {"kind": r.kind}))
            queue = queues.get(r.queue_id or "")
            act = actions(queue.sla if queue else None, stage)
            if act.get("raise_priority") or act.get("escalate_to"):
                escalations[r.conversation_id] = act.get("escalate_to")
        for (stage, kind), count in fired.items():  # a metric's labels() is dear: once per pair, not per row
            SLA_EVENTS.labels(stage=stage, kind=kind).inc(count)
        return feed, notes, escalations
