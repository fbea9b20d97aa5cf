"""The routing engine in the running router: one in-memory RoutingEngine per tenant, used by the transaction
that holds the tenant (advisory lock + its row in ``tenants``), fenced by ``tenants.routing_version``.

Every routing transaction reads the version under lock; if this process's cached engine carries another
number (another replica routed the tenant meanwhile, or a merge or a configuration change invalidated it),
the engine is rebuilt from PostgreSQL first. Decisions are written in the same transaction, the version is
bumped, and the engine goes back into the cache only once that transaction has committed, so a rollback can
never leave the cache ahead of the database."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from services.router.adapters.repository import Unit
from services.router.domain.engine import (
    AgentSpec,
    Assigned,
    Decision,
    Queued,
    QueueSpec,
    RoutingEngine,
    Unassigned,
)
from services.router.domain.model import Assignment, Presence
from shared.bus import Outgoing

log = logging.getLogger(__name__)

Operation = Callable[[RoutingEngine, float], list[Decision]]
# (tenant, stored assignment row) → the feed event
EventMaker = Callable[[str, dict[str, object]], Outgoing]


class RoutingStates:
    def __init__(self) -> None:
        self._cache: dict[str, tuple[RoutingEngine, int]] = {}
        self.rebuilds = 0

    async def route(
        self, u: Unit, tenant_id: str, now: datetime, operations: list[Operation], event: EventMaker
    ) -> list[Outgoing]:
        version = await u.routing_version(tenant_id)
        cached = self._cache.pop(tenant_id, None)
        decisions: list[Decision] = []
        if cached is not None and cached[1] == version:
            engine = cached[0]
        else:
            engine, decisions = await self.rebuild(u, tenant_id, now)
        t = now.timestamp()
        decisions += engine.tick(t)
        for operation in operations:
            decisions += operation(engine, t)
        outbox = await self._persist(u, tenant_id, decisions, now, event)
        await u.bump_routing_version(tenant_id)
        u.after_commit(lambda: self._cache.__setitem__(tenant_id, (engine, version + 1)))
        return outbox

    async def rebuild(self, u: Unit, tenant_id: str, now: datetime) -> tuple[RoutingEngine, list[Decision]]:
        """The tenant's engine from what PostgreSQL holds: queues, agents, and every open conversation (an
        agent's load is the conversations it holds); waiting ones are routed as they would have been."""
        self.rebuilds += 1
        engine = RoutingEngine()
        for order, q in enumerate(await u.queue_rules(tenant_id)):
            rule = {} if q.is_default else {"attr": "channel", "in": sorted(q.channels)}
            engine.upsert_queue(QueueSpec(q.id, q.name, rule=rule, order=order, is_default=q.is_default))
        agents = await u.lock_agents(tenant_id)
        for a in agents:
            engine.upsert_agent(AgentSpec(a.id, a.queue_ids, a.capacity))
        decisions: list[Decision] = []
        conversations = await u.open_conversations_for_routing(tenant_id)
        for c in conversations:
            if c["agent_id"] is not None and c["agent_id"] in engine.agents():
                engine.restore_assignment(
                    c["id"], c["channel"], c["queue_id"], c["agent_id"], c["attrs"], c["enqueued_at"].timestamp()
                )
        for a in agents:
            if a.presence is not Presence.OFFLINE:
                last = a.last_assigned_at.timestamp() if a.last_assigned_at else 0.0
                engine.restore_agent(a.id, a.presence, last)
        t = now.timestamp()
        for c in conversations:
            if c["agent_id"] is None:
                decisions += engine.arrive(
                    c["id"], c["channel"], c["attrs"], t, enqueued_at=c["enqueued_at"].timestamp()
                )
        log.info("routing.rebuilt", extra={"tenant": tenant_id, "conversations": len(conversations)})
        return engine, decisions

    async def _persist(
        self, u: Unit, tenant_id: str, decisions: list[Decision], now: datetime, event: EventMaker
    ) -> list[Outgoing]:
        queued: dict[str, str | None] = {}
        assigned: dict[str, Assignment] = {}
        released: list[str] = []
        for d in decisions:
            if isinstance(d, Queued):
                queued[d.conversation_id] = d.queue_id
            elif isinstance(d, Assigned):
                assigned[d.conversation_id] = Assignment(d.conversation_id, d.agent_id, d.queue_id, d.channel, now)
            elif isinstance(d, Unassigned) and d.reason != "resolved":
                assigned.pop(d.conversation_id, None)
                released.append(d.conversation_id)
        await u.set_queues(queued, now)
        await u.end_assignments(released, now)
        stored = await u.record_assignments(tenant_id, list(assigned.values()))
        return [event(tenant_id, row) for row in stored]
