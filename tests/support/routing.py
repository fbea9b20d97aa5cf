"""Invariants of the routing engine, shared by its property tests, and how those tests run."""

from __future__ import annotations

import unittest
from collections.abc import Iterable
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine

from services.router.domain.routing.engine import RoutingEngine
from services.router.domain.routing.specs import QueueSpec, Strategy


def machine_test(machine: type[RuleBasedStateMachine], examples: int, steps: int) -> type[unittest.TestCase]:
    """The test case of a state machine: ``examples`` runs of up to ``steps`` steps each, with no deadline."""
    test = machine.TestCase
    test.settings = settings(
        max_examples=examples, stateful_step_count=steps, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    return test


def main_queue(offers: float | None, strategy: Strategy, **more: Any) -> QueueSpec:
    """The default queue "main" of the property tests' desks: it overflows to "wide"; ``more``: its other settings."""
    return QueueSpec(
        "main",
        is_default=True,
        offer_timeout_s=offers,
        strategy=strategy,
        sticky_wait_s=20,
        max_declines=2,
        overflow_to="wide",
        **more,
    )


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
