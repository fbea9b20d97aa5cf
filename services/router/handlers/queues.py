"""A tenant's queues as the routing engine sees them: from its engine when this replica holds it, else from the
store (what a handler needs outside the routing owner, e.g. a queue's acknowledgement or follow-up options)."""

from __future__ import annotations

from collections.abc import Mapping

from services.router.domain.routing.queue_config import queue_spec
from services.router.domain.routing.specs import QueueSpec
from services.router.handlers.ports import UnitOfWork
from services.router.handlers.routing_owner import RoutingStates


async def tenant_queues(u: UnitOfWork, routing: RoutingStates, tenant_id: str) -> Mapping[str, QueueSpec]:
    engine = routing.current(tenant_id)
    if engine is not None:
        return engine.queues
    rules = await u.routing.queue_rules(tenant_id)
    return {q.id: queue_spec(q.id, q.name, q.channels, q.is_default, n, q.routing) for n, q in enumerate(rules)}
