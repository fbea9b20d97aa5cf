"""SLA clocks on conversations, kept in PostgreSQL (``sla_timers``) so that they survive restarts and run in
whichever replica ticks first: a timer's ``warned_at`` / ``breached_at`` are set in the transaction that
publishes its event (rows locked, SKIP LOCKED), so none fires twice and none is lost.

Clocks: first response (opened → first agent reply), next response (customer writes after an answer → next
agent reply), resolution (opened → resolved, paused while pending on the customer). Deadlines count the
queue's business hours when it has them. On warning and breach, the queue's ``sla.on_warning`` /
``sla.on_breach`` actions go to the tenant's routing owner on the command log (raise priority, move to an
escalation queue), and
the event goes to the conversation's agent, to the desk's supervisors feed, to ``routing.assignments`` (so to
webhooks) and to the timeline."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select, update

from services.router.adapters.db import tables as t
from services.router.adapters.db.unit_of_work import Lifecycle, SqlRepository, Unit, new_id
from services.router.domain.engine import QueueSpec
from services.router.domain.queue_config import queue_spec
from services.router.domain.sla import Started, TimerKind, actions, deadlines, remaining_s, resumed, target_s
from services.router.handlers.agent_feed import feed_record, new_agent_event
from services.router.handlers.command_log import Command
from services.router.handlers.metrics import SLA_EVENTS
from services.router.handlers.outbox import OutboxRelay
from services.router.handlers.ports import Clock
from services.router.handlers.routing_owner import RoutingStates
from shared.bus import Outgoing

log = logging.getLogger(__name__)
SUPERVISORS = "supervisors"  # the desk-wide feed: /v1/supervisors/feed


class SlaClock:
    def __init__(
        self, repo: SqlRepository, relay: OutboxRelay, clock: Clock, routing: RoutingStates, warning_fraction: float
    ) -> None:
        self.repo = repo
        self.relay = relay
        self.clock = clock
        self.routing = routing
        self.warning_fraction = warning_fraction

    async def _queues(self, u: Unit, tenant_id: str) -> dict[str, QueueSpec]:
        engine = self.routing.current(tenant_id)
        if engine is not None:
            return engine.queues
        rules = await u.queue_rules(tenant_id)
        return {q.id: queue_spec(q.id, q.name, q.channels, q.is_default, n, q.routing) for n, q in enumerate(rules)}

    async def _queues_of(self, u: Unit, tenant_ids: Iterable[str]) -> dict[str, dict[str, QueueSpec]]:
        return {tenant_id: await self._queues(u, tenant_id) for tenant_id in set(tenant_ids)}

    async def _start(
        self, u: Unit, started: Sequence[Started], kinds: Sequence[TimerKind], now: datetime
    ) -> dict[str, dict[str, QueueSpec]]:
        """Start these clocks on these conversations (one insert); returns the tenants' queues it read."""
        queues = await self._queues_of(u, (s.tenant_id for s in started))
        rows = [
            self._row(
                s.tenant_id, s.conversation_id, kind, s.channel, s.tier, queues[s.tenant_id].get(s.queue_id or ""), now
            )
            for s in started
            for kind in kinds
        ]
        if rows:
            await u.conn.execute(insert(t.sla_timers), rows)
        return queues

    # -- inside other transactions (context stage, replies, resolve) --------------------------------------------
    async def opened(self, u: Unit, started: Sequence[Started], now: datetime) -> None:
        await self._start(u, started, (TimerKind.FIRST_RESPONSE, TimerKind.RESOLUTION), now)

    def _row(
        self,
        tenant_id: str,
        conversation_id: str,
        kind: TimerKind,
        channel: str,
        tier: str | None,
        queue: QueueSpec | None,
        now: datetime,
    ) -> dict[str, Any]:
        seconds = target_s(kind, channel, tier, queue.sla if queue else None)
        d = deadlines(now, seconds, self.warning_fraction, queue.hours if queue else None)
        return dict(
            id=new_id(),
            tenant_id=tenant_id,
            conversation_id=conversation_id,
            kind=kind.value,
            queue_id=queue.id if queue else None,
            target_s=seconds,
            started_at=now,
            warn_at=d.warn_at,
            due_at=d.due_at,
        )

    async def customer_wrote(self, u: Unit, answered: Sequence[Started], now: datetime) -> None:
        """Customers wrote in conversations where an agent had answered: the next-response clock starts and a
        paused resolution clock resumes."""
        if not answered:
            return
        ids = [a.conversation_id for a in answered]
        s = t.sla_timers.c
        live_next = {
            r.conversation_id
            for r in await u.conn.execute(
                select(s.conversation_id).where(
                    s.conversation_id.in_(ids), s.kind == TimerKind.NEXT_RESPONSE.value, s.stopped_at.is_(None)
                )
            )
        }
        fresh = [a for a in answered if a.conversation_id not in live_next]
        queues = await self._start(u, fresh, (TimerKind.NEXT_RESPONSE,), now)
        queues |= await self._queues_of(u, {a.tenant_id for a in answered} - queues.keys())
        paused = await u.conn.execute(
            select(s.id, s.tenant_id, s.queue_id, s.remaining_s, s.target_s).where(
                s.conversation_id.in_(ids), s.paused_at.is_not(None), s.stopped_at.is_(None)
            )
        )
        for r in paused:
            queue = queues[r.tenant_id].get(r.queue_id or "")
            d = resumed(now, r.remaining_s or 0.0, r.target_s, self.warning_fraction, queue.hours if queue else None)
            await u.conn.execute(
                update(t.sla_timers)
                .where(s.id == r.id)
                .values(paused_at=None, remaining_s=None, warn_at=d.warn_at, due_at=d.due_at)
            )

    async def agent_replied(
        self, u: Unit, tenant_id: str, conversation_id: str, now: datetime, *, pending: bool
    ) -> None:
        """An answer stops the response clocks; pending on the customer pauses the resolution clock."""
        await self._stop(u, [conversation_id], (TimerKind.FIRST_RESPONSE, TimerKind.NEXT_RESPONSE), now)
        if not pending:
            return
        s = t.sla_timers.c
        queues = await self._queues(u, tenant_id)
        rows = await u.conn.execute(
            select(s.id, s.queue_id, s.due_at).where(
                s.conversation_id == conversation_id,
                s.kind == TimerKind.RESOLUTION.value,
                s.stopped_at.is_(None),
                s.paused_at.is_(None),
            )
        )
        for r in rows:
            queue = queues.get(r.queue_id or "")
            left = remaining_s(now, r.due_at, queue.hours if queue else None)
            await u.conn.execute(update(t.sla_timers).where(s.id == r.id).values(paused_at=now, remaining_s=left))

    async def resolved(self, u: Unit, conversation_id: str, now: datetime) -> None:
        await self._stop(u, [conversation_id], tuple(TimerKind), now)

    async def _stop(self, u: Unit, ids: Iterable[str], kinds: Sequence[TimerKind], now: datetime) -> None:
        s = t.sla_timers.c
        # met: answered before the deadline (a paused clock cannot break)
        base = (
            update(t.sla_timers)
            .where(s.conversation_id.in_(list(ids)), s.kind.in_([k.value for k in kinds]), s.stopped_at.is_(None))
            .values(stopped_at=now)
        )
        await u.conn.execute(base.where(or_(s.paused_at.is_not(None), s.due_at >= now)).values(met=True))
        await u.conn.execute(base.values(met=False))

    # -- the tick ----------------------------------------------------------------------------------------------
    async def tick(self) -> int:
        """Fire what is due. Returns how many warnings and breaches fired."""
        now = self.clock()
        s = t.sla_timers.c
        live = and_(s.stopped_at.is_(None), s.paused_at.is_(None))
        warn = and_(live, s.warned_at.is_(None), s.warn_at <= now)
        breach = and_(live, s.breached_at.is_(None), s.due_at <= now)
        due = or_(warn, breach)
        async with self.repo.reader() as conn:
            # two index range scans (partial indexes on warn_at / due_at of live timers), not a table scan
            tenants = sorted(
                {
                    r.tenant_id
                    for stage in (warn, breach)
                    for r in await conn.execute(select(s.tenant_id).where(stage).distinct())
                }
            )
        fired = 0
        for tenant_id in tenants:
            fired += await self._fire_tenant(tenant_id, due, now)
        if fired:
            await self.relay.flush()
        return fired

    async def _fire_tenant(self, tenant_id: str, due: Any, now: datetime) -> int:
        s, c = t.sla_timers.c, t.conversations.c
        async with self.repo.unit() as u:
            await u.lock_tenants([tenant_id])  # tenant first, then timer rows: the order every writer uses
            rows = (
                await u.conn.execute(
                    select(
                        s.id,
                        s.conversation_id,
                        s.kind,
                        s.queue_id,
                        s.due_at,
                        s.warn_at,
                        s.warned_at,
                        s.breached_at,
                        c.agent_id,
                        c.customer_id,
                    )
                    .join(t.conversations, c.id == s.conversation_id)
                    .where(due, s.tenant_id == tenant_id)
                    .order_by(s.due_at)
                    .limit(1000)
                    .with_for_update(of=t.sla_timers, skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            queues = await self._queues(u, tenant_id)
            feed: list[dict[str, Any]] = []
            notes: list[Lifecycle] = []
            escalations: dict[str, str | None] = {}
            for r in rows:
                stage = "breach" if r.breached_at is None and r.due_at <= now else "warning"
                values: dict[str, Any] = {"breached_at": now} if stage == "breach" else {}
                if r.warned_at is None:
                    values["warned_at"] = now  # a breach implies the warning: never fired late after it
                await u.conn.execute(update(t.sla_timers).where(s.id == r.id).values(**values))
                SLA_EVENTS.labels(stage=stage, kind=r.kind).inc()
                data = {"kind": r.kind, "stage": stage, "due_at": r.due_at, "queue_id": r.queue_id}
                for agent in filter(None, (r.agent_id, SUPERVISORS)):
                    feed.append(new_agent_event(tenant_id, agent, f"sla.{stage}", r.conversation_id, now, **data))
                notes.append(
                    Lifecycle(tenant_id, r.customer_id, r.conversation_id, f"sla_{stage}", now, {"kind": r.kind})
                )
                queue = queues.get(r.queue_id or "")
                act = actions(queue.sla if queue else None, stage)
                if act.get("raise_priority") or act.get("escalate_to"):
                    escalations[r.conversation_id] = act.get("escalate_to")
            await u.add_lifecycle(notes)
            outbox: list[Outgoing] = [
                feed_record(self.routing.topic, tenant_id, row) for row in await u.add_agent_events(feed)
            ]
            if escalations:  # the tenant's routing owner acts on it, in order with its other commands
                outbox.append(Command.new(tenant_id, "escalate", escalations=escalations).record(self.routing.topics))
            await u.add_outbox(outbox, now)
        log.info("sla.fired", extra={"tenant": tenant_id, "count": len(rows)})
        return len(rows)
