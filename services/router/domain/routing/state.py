"""One tenant's routing state in memory, indexed so a decision never scans every agent or every waiting
conversation. It keeps the indexes true as work is taken and released, and answers read views; it decides
nothing (``routing/engine.py`` does, on top of it).

Indexes, per (queue, channel):
- ``_room``: online agents with room on that channel, ordered (total load, last assignment, id): the head is
  the least-loaded, longest-idle agent.
- ``_waiting``: waiting conversations ordered by virtual time (``Work.key``, see ``routing/specs.py``), one line
  per (queue, channel, who may take it): the step's agents, skills and language (``routing/selection.py``).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sortedcontainers import SortedList

from services.router.domain.errors import InvalidCommand, NotFound
from services.router.domain.model import Presence
from services.router.domain.routing.rules import matches
from services.router.domain.routing.specs import AgentSpec, Needs, QueueSpec, Work, needs


@dataclass(slots=True)
class AgentState:
    """An agent as routing sees them: presence, load per channel, and when they were last given work."""

    spec: AgentSpec
    presence: Presence = Presence.OFFLINE
    load: dict[str, int] = field(default_factory=dict)
    last_assigned: float = 0.0
    work: set[str] = field(default_factory=set)

    def capacity_for(self, channel: str) -> int:
        cap = self.spec.capacity
        return cap.get(channel, cap.get("default", 0))

    def has_room(self, channel: str) -> bool:
        if self.spec.profile is not None:
            return self.spec.profile.has_room(self.load, channel)
        return self.load.get(channel, 0) < self.capacity_for(channel)

    def units(self) -> float:
        """The load as the agent's profile weighs it (without one: a conversation is a unit)."""
        profile = self.spec.profile
        return profile.units(self.load) if profile is not None else float(sum(self.load.values()))

    @property
    def rank(self) -> tuple[float, float, str]:
        return (self.units(), self.last_assigned, self.spec.id)


class RoutingState:
    def __init__(self) -> None:
        self.queues: dict[str, QueueSpec] = {}
        self._queue_order: list[QueueSpec] = []
        self._agents: dict[str, AgentState] = {}
        self._work: dict[str, Work] = {}
        self._room: dict[tuple[str, str], SortedList] = {}
        self._waiting: dict[tuple[str, str, Needs], SortedList] = {}
        self._channels: set[str] = set()
        self._rr_cursor: dict[str, str] = {}
        # (due, work seq, kind, conversation id): ordered by the work's own numbers, so an engine restored from
        # stored facts fires its timers in the same order as the one that made them
        self._timers: list[tuple[float, int, str, str]] = []
        self._next_seq = 0
        self._open: dict[str, bool] = {}
        # what changed since the last ``changes()``: the facts the caller must store with the decisions
        self._touched_work: set[str] = set()
        self._touched_agents: set[str] = set()

    # -- configuration ------------------------------------------------------------------------------------
    def upsert_queue(self, spec: QueueSpec) -> None:
        self.queues[spec.id] = spec
        self._queue_order = sorted(self.queues.values(), key=lambda q: (q.is_default, q.order, q.id))
        self._open.setdefault(spec.id, True)
        self._reindex_all()

    def upsert_agent(self, spec: AgentSpec) -> None:
        agent = self._agents.get(spec.id)
        if agent is None:
            self._agents[spec.id] = AgentState(spec)
        else:
            self._unindex(agent)
            agent.spec = spec
            self._index(agent)

    def select_queue(self, attrs: Mapping[str, Any]) -> QueueSpec | None:
        for queue in self._queue_order:
            if not queue.is_default and matches(queue.rule, attrs):
                return queue
        return next((q for q in self._queue_order if q.is_default), None)

    # -- indexes --------------------------------------------------------------------------------------------
    def _room_list(self, queue_id: str, channel: str) -> SortedList:
        key = (queue_id, channel)
        room = self._room.get(key)
        if room is None:
            room = self._room[key] = SortedList()
            for agent in self._agents.values():
                if self._indexable(agent, queue_id) and agent.has_room(channel):
                    room.add(agent.rank)
        return room

    def _line(self, work: Work) -> SortedList:
        """The waiting line the work belongs in: its queue and channel, and who may take it (``needs``), so an
        agent who may not take any of a line skips it whole instead of looking at each piece of work."""
        return self._line_at(_line_key(work))

    def _line_at(self, key: tuple[Any, ...]) -> SortedList:
        line = self._waiting.get(key)
        if line is None:
            line = self._waiting[key] = SortedList()
        return line

    def _indexable(self, agent: AgentState, queue_id: str) -> bool:
        return agent.presence is Presence.ONLINE and queue_id in agent.spec.queues

    def _index(self, agent: AgentState) -> None:
        for (queue_id, channel), room in self._room.items():
            if self._indexable(agent, queue_id) and agent.has_room(channel):
                room.add(agent.rank)

    def _unindex(self, agent: AgentState) -> None:
        rank = agent.rank
        for (queue_id, _), room in self._room.items():
            if queue_id in agent.spec.queues:
                room.discard(rank)

    def _reindex_all(self) -> None:
        self._room.clear()

    # -- rebuilding from stored facts ----------------------------------------------------------------------------
    def restore_agent(self, agent_id: str, presence: Presence, last_assigned: float) -> None:
        """Set what the store says about an agent, without routing anything (rebuilds only)."""
        agent = self._agent(agent_id)
        self._unindex(agent)
        agent.presence = presence
        agent.last_assigned = last_assigned
        self._index(agent)

    def restore_work(self, work: Work) -> None:
        """Put back a piece of work exactly as stored (``routing/facts.py``): in its queue's line, or held by its
        agent, with its timers (rebuilds only; restore agents' presence first or after, either way)."""
        self.restore_works((work,))

    def restore_works(self, works: Iterable[Work]) -> None:
        """``restore_work`` for each, with the waiting ones put into their lines at the end, one sorted merge per
        line: a takeover restores tens of thousands at once."""
        waiting: dict[tuple[Any, ...], list[tuple[float, int, str]]] = {}
        for work in works:
            if work.conversation_id in self._work:
                continue
            if work.queue_id not in self.queues:
                raise InvalidCommand(f"no queue {work.queue_id}")
            self._channels.add(work.channel)
            self._work[work.conversation_id] = work
            self._next_seq = max(self._next_seq, work.seq + 1)
            agent = self._agents.get(work.agent_id or "")
            if agent is None:
                work.agent_id = None
                work.offer_expires = None
                waiting.setdefault(_line_key(work), []).append(work.key)
            else:
                self._unindex(agent)
                agent.load[work.channel] = agent.load.get(work.channel, 0) + 1
                agent.work.add(work.conversation_id)
                self._index(agent)
            self._arm(work)
        for key, keys in waiting.items():
            self._line_at(key).update(keys)

    def restore_counters(self, next_seq: int, rr_cursor: Mapping[str, str]) -> None:
        self._next_seq = max(self._next_seq, next_seq)
        self._rr_cursor = dict(rr_cursor)

    def _arm(self, work: Work) -> None:
        """Every timer the work's facts imply (a timer that has nothing to do when it fires does nothing)."""
        queue = self.queues[work.queue_id]
        if work.offer_expires is not None:
            self._timer(work.offer_expires, "offer", work)
        if queue.overflow_after_s is not None and queue.overflow_to and not work.overflowed:
            self._timer(work.enqueued_at + queue.overflow_after_s, "overflow", work)
        if work.held_for is not None:
            self._timer(work.reserved_until, "hold", work)
        if work.not_before > 0:
            self._timer(work.not_before, "window", work)
        if work.step + 1 < len(queue.steps):
            self._timer(work.enqueued_at + queue.steps[work.step + 1].after_s, "step", work)
        for until in (work.declined_by or {}).values():
            self._timer(until, "exclusion", work)

    # -- what to store -------------------------------------------------------------------------------------------
    def changes(self) -> tuple[dict[str, Work | None], dict[str, tuple[Presence, float]]]:
        """What changed since the last call, to be stored with the decisions: each touched work as it is now
        (None: it left routing), and each touched agent's presence and last assignment time."""
        work = {cid: self._work.get(cid) for cid in sorted(self._touched_work)}
        agents = {
            aid: (self._agents[aid].presence, self._agents[aid].last_assigned)
            for aid in sorted(self._touched_agents)
            if aid in self._agents
        }
        self._touched_work.clear()
        self._touched_agents.clear()
        return work, agents

    def counters(self) -> tuple[int, dict[str, str]]:
        """The engine-wide facts: the next work sequence number and the round-robin cursors."""
        return self._next_seq, dict(self._rr_cursor)

    def _new_seq(self) -> int:
        seq = self._next_seq
        self._next_seq += 1
        return seq

    # -- taking and releasing capacity ---------------------------------------------------------------------------
    def _take(self, agent: AgentState, work: Work, now: float) -> None:
        """Agent takes the work: capacity is consumed now (an offer reserves it)."""
        self._touched_work.add(work.conversation_id)
        self._touched_agents.add(agent.spec.id)
        self._line(work).discard(work.key)
        self._unindex(agent)
        agent.load[work.channel] = agent.load.get(work.channel, 0) + 1
        agent.last_assigned = now
        agent.work.add(work.conversation_id)
        self._index(agent)
        work.agent_id = agent.spec.id

    def _release(self, agent: AgentState, work: Work) -> None:
        self._touched_work.add(work.conversation_id)
        self._unindex(agent)
        agent.load[work.channel] = max(0, agent.load.get(work.channel, 0) - 1)
        agent.work.discard(work.conversation_id)
        self._index(agent)
        work.agent_id = None
        work.offer_expires = None

    def _timer(self, due: float, kind: str, work: Work) -> None:
        heapq.heappush(self._timers, (due, work.seq, kind, work.conversation_id))

    def _agent(self, agent_id: str) -> AgentState:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise NotFound(f"no agent {agent_id}")
        return agent

    def _owned(self, agent_id: str, conversation_id: str) -> Work:
        work = self._work.get(conversation_id)
        if work is None or work.agent_id != agent_id:
            raise InvalidCommand("the conversation is not offered or assigned to this agent")
        return work

    # -- views -----------------------------------------------------------------------------------------------------
    def waiting(self, queue_id: str | None = None) -> list[Work]:
        """Waiting work, in the order it will be served (per queue if given)."""
        lists = [w for (q, _, _), w in self._waiting.items() if queue_id is None or q == queue_id]
        keys = sorted(itertools.chain.from_iterable(lists))
        return [self._work[k[2]] for k in keys]

    def waiting_counts(self) -> dict[str, int]:
        """How many wait in each queue (every queue listed, empty ones as 0)."""
        counts = dict.fromkeys(self.queues, 0)
        for (queue_id, _, _), waiting in self._waiting.items():
            counts[queue_id] = counts.get(queue_id, 0) + len(waiting)
        return counts

    def work(self, conversation_id: str) -> Work | None:
        return self._work.get(conversation_id)

    def online_counts(self) -> dict[str, int]:
        """How many agents are online in each queue (every queue listed): the servers of its expected wait."""
        counts = dict.fromkeys(self.queues, 0)
        for agent in self._agents.values():
            if agent.presence is Presence.ONLINE:
                for queue_id in agent.spec.queues:
                    counts[queue_id] = counts.get(queue_id, 0) + 1
        return counts

    def agent_load(self, agent_id: str) -> dict[str, int]:
        return dict(self._agent(agent_id).load)

    def agent_units(self, agent_id: str) -> float:
        return self._agent(agent_id).units()

    def agent_work(self, agent_id: str) -> set[str]:
        return set(self._agent(agent_id).work)

    def presence(self, agent_id: str) -> Presence:
        return self._agent(agent_id).presence

    def agents(self) -> Iterable[str]:
        return self._agents.keys()


def _line_key(work: Work) -> tuple[Any, ...]:
    """Which waiting line the work belongs in (``RoutingState._line``)."""
    return (work.queue_id, work.channel, needs(work))
