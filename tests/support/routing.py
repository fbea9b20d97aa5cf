"""Invariants of the routing engine, shared by its property tests."""

from __future__ import annotations

from collections.abc import Iterable

from services.router.domain.routing.engine import RoutingEngine


def assert_nothing_waits_that_someone_could_take(engine: RoutingEngine, agents: Iterable[str], now: float) -> None:
    """Liveness: no conversation waits in a queue while an eligible agent who is online has room for it."""
    if not engine.queues:
        return
    everyone = list(agents)
    for work in engine.waiting():
        for agent in everyone:
            assert not engine.can_take(agent, work.conversation_id, now), (
                f"{work.conversation_id} waits while {agent} could take it"
            )
