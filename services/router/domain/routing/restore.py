"""An engine rebuilt from what the store holds: configuration, agents, the engine's counters, and each open
conversation with its routing fact. Pure, so the rebuild-equivalence property tests run the very function the
router's rebuild runs (``handlers/routing_owner.py`` only reads the rows)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from services.router.domain.model import Presence
from services.router.domain.routing.decisions import Decision
from services.router.domain.routing.engine import RoutingEngine
from services.router.domain.routing.facts import work_from_fact
from services.router.domain.routing.specs import AgentSpec, QueueSpec


@dataclass(frozen=True, slots=True)
class StoredAgent:
    spec: AgentSpec
    presence: Presence
    last_assigned: float  # between agents equally loaded, the one assigned longest ago goes first


class StoredWork(NamedTuple):
    """An open conversation as stored: who holds it (the live assignment) and its routing fact (None if it was
    never routed, or was stored before facts were). A tuple: a takeover reads tens of thousands."""

    conversation_id: str
    channel: str
    queue_id: str | None
    attrs: Mapping[str, Any]
    enqueued_at: float
    fact: Mapping[str, Any] | None
    agent_id: str | None = None
    offer_expires: float | None = None


def restored(
    queues: Iterable[QueueSpec],
    agents: Iterable[StoredAgent],
    counters: Mapping[str, Any],
    works: Iterable[StoredWork],
    now: float,
) -> tuple[RoutingEngine, list[Decision]]:
    """The engine the facts describe, and what it decides at once: work without a fact arrives now, and
    waiting work an online agent with room may take goes to them (never any, when every fact was stored)."""
    engine = RoutingEngine()
    for queue in queues:
        engine.upsert_queue(queue)
    for agent in agents:
        engine.upsert_agent(agent.spec)
        engine.restore_agent(agent.spec.id, agent.presence, agent.last_assigned)
    engine.restore_counters(int(counters.get("next_seq", 0)), counters.get("rr_cursor") or {})
    arriving: list[StoredWork] = []
    adopted: list[tuple[StoredWork, str]] = []
    facts = []
    agents_known = engine.agents()
    for w in works:
        agent_id = w.agent_id if w.agent_id is not None and w.agent_id in agents_known else None
        if w.fact and w.fact.get("queue") in engine.queues:
            facts.append(work_from_fact(w.conversation_id, w.fact, agent_id, w.offer_expires))
        elif agent_id is not None:
            adopted.append((w, agent_id))
        else:
            arriving.append(w)
    engine.restore_works(facts)  # each conversation's own: the order among them and adoptions does not matter
    for w, agent_id in adopted:
        engine.adopt(w.conversation_id, w.channel, w.queue_id, w.attrs, w.enqueued_at, agent_id)
    # only once every agent's load is back: routing before that could give an agent more than they may hold
    decisions: list[Decision] = []
    for w in arriving:
        decisions += engine.arrive(w.conversation_id, w.channel, w.attrs, now, enqueued_at=w.enqueued_at)
    return engine, decisions + engine.settle(now)
