"""The routing engine in the running router: one in-memory RoutingEngine per tenant, used by the transaction
that holds the tenant (advisory lock + its row in ``tenants``), fenced by ``tenants.routing_version``.

Every routing transaction reads the version under lock; if this process's cached engine carries another
number (another replica routed the tenant meanwhile, or a merge or a configuration change invalidated it),
the engine is rebuilt from PostgreSQL first. Decisions are written in the same transaction, the version is
bumped, and the engine goes back into the cache only once that transaction has committed, so a rollback can
never leave the cache ahead of the database."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, NamedTuple

from services.router.domain.model import Assignment
from services.router.domain.routing import decisions as decision  # "decisions": the lists of them, below
from services.router.domain.routing.decisions import Decision
from services.router.domain.routing.engine import RoutingEngine
from services.router.domain.routing.facts import work_fact
from services.router.domain.routing.queue_config import queue_spec
from services.router.domain.routing.restore import StoredAgent, restored
from services.router.domain.routing.specs import AgentSpec
from services.router.handlers import voice
from services.router.handlers.agent_feed import feed_record
from services.router.handlers.metrics import (
    QUEUE_WAITING,
    ROUTING_DECISIONS,
    ROUTING_OWNED,
    ROUTING_REBUILDS,
    observe_routing,
)
from services.router.handlers.ports import UnitOfWork
from services.router.handlers.ports.records import AgentFacts, Placement
from services.router.handlers.routing_effects import Effects, effects_of
from shared.bus import Outgoing
from shared.memory import collection_paused
from shared.topics import Topics

log = logging.getLogger(__name__)

Operation = Callable[[RoutingEngine, float], list[Decision]]


class Routed(NamedTuple):
    """What a routing pass publishes, and how many of those events are about work (offers, assignments,
    unassignments; not presence changes), in all and by tenant."""

    outbox: list[Outgoing]
    work_events: int
    by_tenant: Mapping[str, int] = {}


class RoutingStates:
    def __init__(self, topics: Topics) -> None:
        self.topics = topics
        self.topic = topics.assignments
        self._cache: dict[str, tuple[RoutingEngine, int]] = {}
        self._current: dict[str, RoutingEngine] = {}
        self._partition: dict[str, int] = {}  # tenant → the partition of the command log it came from
        self.rebuilds = 0

    def note_partition(self, tenant_id: str, partition: int) -> None:
        """A record of this tenant arrived on ``partition`` of the co-partitioned events/commands topics."""
        self._partition[tenant_id] = partition

    def owns(self, tenant_id: str) -> bool:
        """This replica applies the tenant's routing (a record of it arrived on a partition it still holds)."""
        return tenant_id in self._partition

    def retain(self, partitions: set[int]) -> None:
        """The group moved partitions: drop the engines of tenants this replica no longer owns (their new owner
        rebuilds them from PostgreSQL; if they ever come back, so does this one, since the version fence has
        moved on)."""
        for tenant_id, partition in list(self._partition.items()):
            if partition not in partitions:
                del self._partition[tenant_id]
                self._cache.pop(tenant_id, None)
                self._current.pop(tenant_id, None)
                log.info("routing.released", extra={"tenant": tenant_id, "partition": partition})
        ROUTING_OWNED.set(len(self._cache))

    def current(self, tenant_id: str) -> RoutingEngine | None:
        """The engine of the tenant's latest routing pass in this process (in the transaction that holds the
        tenant, the one it is using), for reading queue configuration and where work went."""
        return self._current.get(tenant_id)

    def cached_due(self, now: datetime) -> list[str]:
        """Tenants whose cached engine has a timer due (offer timeouts, overflow, opening hours)."""
        t = now.timestamp()
        return [tenant for tenant, (engine, _) in list(self._cache.items()) if engine.due(t)]

    def is_cached(self, tenant_id: str) -> bool:
        return tenant_id in self._cache

    async def route(
        self,
        u: UnitOfWork,
        tenant_id: str,
        now: datetime,
        operations: list[Operation],
        released: Sequence[tuple[str, str]] = (),
        arriving: Collection[str] = (),
        causes: Mapping[str, Mapping[str, str]] | None = None,
        cleared: Collection[str] = (),
    ) -> Routed:
        """One tenant's routing pass (``route_many`` of one)."""
        return await self.route_many(u, {tenant_id: Pass(operations, released, arriving, cleared)}, now, causes)

    async def route_many(
        self,
        u: UnitOfWork,
        passes: Mapping[str, Pass],
        now: datetime,
        causes: Mapping[str, Mapping[str, str]] | None = None,
    ) -> Routed:
        """A routing pass of each tenant in ``passes``, in the caller's transaction: their versions read (rows
        locked) in one statement, each tenant's engine run on its own, and what they all decided written
        together, one statement per table, whatever the number of tenants. ``causes``: conversation → the
        message that brought it here (``event_id``, ``received_at``), carried on its offer or assignment so a
        feed reader can tell how long the customer's message took to reach an agent."""
        running = RoutingPass(now)
        await self.run(u, running, passes)
        return await self.finish(u, running, causes)

    async def run(self, u: UnitOfWork, running: RoutingPass, passes: Mapping[str, Pass]) -> None:
        """Run ``passes`` in the engines of ``running``, nothing written yet: a tenant new to the pass has its
        version read (row locked) and its engine taken from the cache or rebuilt, and ticked, first. Run again
        with more operations before ``finish`` writes what all of them decided."""
        t = running.now.timestamp()
        joining = sorted(tenant_id for tenant_id in passes if tenant_id not in running.ran)
        if joining:
            running.versions.update(await u.routing.routing_versions(joining))
        for tenant_id in sorted(passes):
            todo = passes[tenant_id]
            if tenant_id in joining:
                cached = self._cache.pop(tenant_id, None)
                rebuilt: list[Decision] = []
                if cached is not None and cached[1] == running.versions[tenant_id]:
                    engine = cached[0]
                else:
                    engine, rebuilt = await self.rebuild(u, tenant_id, running.now, todo.arriving)
                # an engine rebuilt from the database never holds what this transaction took from an agent
                # already (a resolve), so it cannot announce the release: announced here, before anything the
                # rebuild decides, so feeds never show an agent over capacity
                decisions: list[Decision] = [
                    decision.Unassigned(conversation_id, agent, "resolved")
                    for conversation_id, agent in todo.released
                    if engine.work(conversation_id) is None
                ]
                decisions += rebuilt
                self._current[tenant_id] = engine
                decisions += engine.tick(t)
                running.ran[tenant_id] = (engine, decisions)
            engine, decisions = running.ran[tenant_id]
            running.cleared.update((tenant_id, c) for c in todo.cleared)
            for operation in todo.operations:
                decisions += operation(engine, t)

    def placements(self, running: RoutingPass, conversation_ids: Collection[str]) -> dict[str, Placement]:
        """Where the pass so far put these conversations (those it routed): what a conversation inserted now
        carries, so that ``finish`` need not write it again (``finish(..., written=)``)."""
        out: dict[str, Placement] = {}
        wanted = set(conversation_ids)
        for tenant_id, (engine, decisions) in running.ran.items():
            effects = effects_of(tenant_id, decisions, running.now, {})
            for cid in wanted:
                work = engine.work(cid)
                if work is None:
                    continue
                fresh = effects.fresh.get(cid)
                out[cid] = Placement(
                    work_fact(work), effects.queued.get(cid), fresh.agent_id if fresh else None, running.now
                )
        return out

    async def finish(
        self,
        u: UnitOfWork,
        running: RoutingPass,
        causes: Mapping[str, Mapping[str, str]] | None = None,
        written: Mapping[str, Placement] | None = None,
    ) -> Routed:
        """Write what the pass decided, bump the tenants' versions, and keep their engines once committed.
        ``written``: conversations inserted with their placement (``placements``); what still matches is not
        written again."""
        ran, now = running.ran, running.now
        if not ran:
            return Routed([], 0)
        outbox, published = await self._persist(u, running, causes or {}, written or {})
        states: dict[str, dict[str, Any]] = {}
        for tenant_id, (engine, decisions) in ran.items():
            for d in decisions:
                ROUTING_DECISIONS.labels(decision=type(d).__name__.lower()).inc()
            u.after_commit(partial(observe_routing, engine, decisions, causes or {}, now))
            for queue_id, count in engine.waiting_counts().items():
                QUEUE_WAITING.labels(tenant=tenant_id, queue=queue_id).set(count)
            next_seq, cursor = engine.counters()
            states[tenant_id] = {"next_seq": next_seq, "rr_cursor": cursor}
            u.after_commit(partial(self._keep, tenant_id, engine, running.versions[tenant_id] + 1))
        await u.routing.store_routing_states(states)
        # presence changes go on the agent's feed and the supervisors'
        work = {
            tenant_id: published[tenant_id] - sum(2 for d in decisions if isinstance(d, decision.PresenceChanged))
            for tenant_id, (_, decisions) in ran.items()
        }
        return Routed(outbox, sum(work.values()), work)

    def _keep(self, tenant_id: str, engine: RoutingEngine, version: int) -> None:
        self._cache[tenant_id] = (engine, version)
        ROUTING_OWNED.set(len(self._cache))

    async def rebuild(
        self, u: UnitOfWork, tenant_id: str, now: datetime, arriving: Collection[str] = ()
    ) -> tuple[RoutingEngine, list[Decision]]:
        """The tenant's engine from what the store holds: queues, agents, the engine's counters, and every open
        conversation restored from its routing fact (``domain/routing/facts.py``) exactly as the lost engine
        had it. Work without a fact (never routed yet) arrives now."""
        self.rebuilds += 1
        ROUTING_REBUILDS.inc()
        queues = [
            queue_spec(q.id, q.name, q.channels, q.is_default, order, q.routing)
            for order, q in enumerate(await u.routing.queue_rules(tenant_id))
        ]
        agents = [
            StoredAgent(
                AgentSpec(a.id, a.queue_ids, a.capacity, a.skills, a.languages, a.profile),
                a.presence,
                a.last_assigned_at.timestamp() if a.last_assigned_at else 0.0,
            )
            for a in await u.routing.lock_agents(tenant_id)
        ]
        counters = await u.routing.routing_state(tenant_id)
        with collection_paused():  # a few long-lived objects per open conversation: nothing for it to collect
            conversations = await u.routing.open_conversations_for_routing(tenant_id)
            # those this pass arrives with what it knows
            works = [w for w in conversations if w.fact or w.agent_id or w.conversation_id not in arriving]
            engine, decisions = restored(queues, agents, counters, works, now.timestamp())
        log.info("routing.rebuilt", extra={"tenant": tenant_id, "conversations": len(conversations)})
        return engine, decisions

    async def _persist(
        self,
        u: UnitOfWork,
        running: RoutingPass,
        causes: Mapping[str, Mapping[str, str]],
        written: Mapping[str, Placement],
    ) -> tuple[list[Outgoing], Counter[str]]:
        """The net effect of every tenant's decisions in a few set-wise writes, the facts the engines changed,
        and every step on the agents' feeds; with how many records each tenant's decisions publish."""
        ran, now = running.ran, running.now
        effects = {
            tenant_id: effects_of(tenant_id, decisions, now, causes) for tenant_id, (_, decisions) in ran.items()
        }
        await u.routing.end_assignments([(tenant_id, c) for tenant_id, e in effects.items() for c in e.released], now)
        await u.routing.accept_offers([(tenant_id, c) for tenant_id, e in effects.items() for c in e.accepted], now)
        fresh = {tenant_id: list(e.fresh.values()) for tenant_id, e in effects.items()}
        pointed = {a.conversation_id for made in fresh.values() for a in made if _agent_written(a, written)}
        await u.routing.record_assignments(fresh, pointed)
        await u.conversations.add_conversation_notes({tenant_id: e.notes for tenant_id, e in effects.items()}, now)
        await u.conversations.mark_escalated(
            [(tenant_id, c) for tenant_id, e in effects.items() for c in e.escalated], now
        )
        await self._store_facts(u, running, effects, written)
        feed = [event for e in effects.values() for event in e.feed]
        placed = (d for _, ds in ran.values() for d in ds if isinstance(d, decision.Offered | decision.Assigned))
        if any(d.channel == "voice" for d in placed):
            await self._voice_details(u, feed)
        extra: list[Outgoing] = []
        published: Counter[str] = Counter()
        for tenant_id, (engine, decisions) in ran.items():
            closed = {
                d.conversation_id: (
                    d.expected_response_at,
                    hours.timezone if (hours := engine.queues[d.queue_id].hours) else "UTC",
                )
                for d in decisions
                if isinstance(d, decision.AutoAcknowledged)
                and (work := engine.work(d.conversation_id))
                and work.channel == "voice"
            }
            if closed:
                prompts = await voice.closed_prompts(
                    u, Topics(self.topic.removesuffix("routing.assignments")), tenant_id, closed, now
                )
                extra += prompts
                published[tenant_id] += len(prompts)
        stored = await u.feeds.add(feed)
        published.update(row["tenant_id"] for row in stored)
        return [feed_record(self.topic, row["tenant_id"], row) for row in stored] + extra, published

    async def _store_facts(
        self, u: UnitOfWork, running: RoutingPass, effects: Mapping[str, Effects], written: Mapping[str, Placement]
    ) -> None:
        """What the engines changed, so a rebuild restores exactly these engines; where conversations wait now
        (but what a conversation was inserted with already, and the facts a resolution emptied)."""
        now = running.now
        facts: dict[tuple[str, str], Mapping[str, Any] | None] = {}
        agents: dict[str, list[AgentFacts]] = {}
        for tenant_id, (engine, _) in running.ran.items():
            work, changed = engine.changes()
            facts.update({(tenant_id, cid): work_fact(w) if w is not None else None for cid, w in work.items()})
            presence = effects[tenant_id].presence
            agents[tenant_id] = [
                AgentFacts(
                    agent_id,
                    state,
                    datetime.fromtimestamp(last, UTC) if last else None,
                    presence.get(agent_id),
                    now if agent_id in presence else None,
                )
                for agent_id, (state, last) in changed.items()
            ]
        queued = {(tenant_id, cid): q for tenant_id, e in effects.items() for cid, q in e.queued.items()}
        for key in [k for k in facts if k[1] in written or k in running.cleared]:
            if facts[key] == (written[key[1]].routing if key[1] in written else None):
                del facts[key]
        for key in [k for k in queued if k[1] in written]:
            if queued[key] == written[key[1]].queue_id:
                del queued[key]
        await u.routing.store_facts(facts, queued, now)
        await u.routing.store_agents(agents)

    async def _voice_details(self, u: UnitOfWork, feed: list[dict[str, Any]]) -> None:
        """Offers and assignments of calls carry the call id and where to put it through; of callback requests,
        the number to call."""
        calls = [e for e in feed if e["type"] in ("offer", "assignment") and e["data"].get("channel") == "voice"]
        details = await voice.voice_details(u, ((e["tenant_id"], e["conversation_id"]) for e in calls))
        endpoints = await voice.agent_endpoints(u, ((e["tenant_id"], e["agent_id"]) for e in calls))
        for e in calls:
            e["data"].update(details.get(e["conversation_id"], {}), voice_endpoint=endpoints.get(e["agent_id"]))


class Pass(NamedTuple):
    """One tenant's part of a routing pass. ``released``: (conversation, agent) this transaction took from an
    agent in the database already (a resolve). ``arriving``: conversations the operations arrive (a rebuild
    leaves them to them: they know more, a callback's window, the previous agent). ``cleared``: conversations
    whose routing fact this transaction emptied already (a resolve): not written again."""

    operations: list[Operation]
    released: Sequence[tuple[str, str]] = ()
    arriving: Collection[str] = ()
    cleared: Collection[str] = ()


@dataclass
class RoutingPass:
    """A routing pass under way in one transaction (``RoutingStates.run``): each tenant's engine and what it
    decided so far, and the version read under lock; nothing written until ``RoutingStates.finish``."""

    now: datetime
    versions: dict[str, int] = field(default_factory=dict)
    ran: dict[str, tuple[RoutingEngine, list[Decision]]] = field(default_factory=dict)
    cleared: set[tuple[str, str]] = field(default_factory=set)  # (tenant, conversation): ``Pass.cleared``


def _agent_written(a: Assignment, written: Mapping[str, Placement]) -> bool:
    """The conversation was inserted pointing at this assignment's agent already."""
    placed = written.get(a.conversation_id)
    return placed is not None and placed.agent_id == a.agent_id and placed.at == a.assigned_at
