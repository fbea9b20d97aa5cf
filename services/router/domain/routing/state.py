"""One tenant's routing state in memory, indexed so a decision never scans every agent or every waiting
conversation. It keeps the indexes true as work is taken and released, and answers read views; it decides
nothing (``routing/engine.py`` does, on top of it).

Indexes, per (queue, channel):
- ``_room``: online agents with room on that channel, ordered (total load, last assignment, id): the head is
  the least-loaded, longest-idle agent.
- ``_waiting``: waiting conversations ordered by virtual time (``Work.key``, see ``routing/specs.py``).
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
from services.router.domain.routing.specs import TIER_BOOST_S, AgentSpec, QueueSpec, Work


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
        return self.load.get(channel, 0) < self.capacity_for(channel)

    @property
    def rank(self) -> tuple[int, float, str]:
        return (sum(self.load.values()), self.last_assigned, self.spec.id)


class RoutingState:
    def __init__(self) -> None:
        self.queues: dict[str, QueueSpec] = {}
        self._queue_order: list[QueueSpec] = []
        self._agents: dict[str, AgentState] = {}
        self._work: dict[str, Work] = {}
        self._room: dict[tuple[str, str], SortedList] = {}
        self._waiting: dict[tuple[str, str], SortedList] = {}
        self._channels: set[str] = set()
        self._rr_cursor: dict[str, str] = {}
        self._timers: list[tuple[float, int, str, str]] = []  # (due, seq, kind, conversation id)
        self._seq = itertools.count()
        self._open: dict[str, bool] = {}

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

    def _waiting_list(self, queue_id: str, channel: str) -> SortedList:
        key = (queue_id, channel)
        waiting = self._waiting.get(key)
        if waiting is None:
            waiting = self._waiting[key] = SortedList()
        return waiting

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

    # -- rebuilding from stored state ------------------------------------------------------------------------
    def restore_agent(self, agent_id: str, presence: Presence, last_assigned: float) -> None:
        """Set what the database says about an agent, without routing anything (rebuilds only)."""
        agent = self._agent(agent_id)
        self._unindex(agent)
        agent.presence = presence
        agent.last_assigned = last_assigned
        self._index(agent)

    def restore_assignment(
        self,
        conversation_id: str,
        channel: str,
        queue_id: str | None,
        agent_id: str,
        attrs: Mapping[str, Any],
        enqueued_at: float,
        offer_expires: float | None = None,
    ) -> None:
        """A conversation the database says an agent holds (or is offered, until ``offer_expires``): it takes
        that agent's capacity (rebuilds only)."""
        queue = self.queues.get(queue_id or "") or self.select_queue({**attrs, "channel": channel})
        if queue is None or conversation_id in self._work:
            return
        tier = str(attrs.get("tier") or "standard")
        work = Work(
            conversation_id,
            channel,
            queue.id,
            enqueued_at,
            enqueued_at - TIER_BOOST_S.get(tier, 0.0),
            next(self._seq),
            language=attrs.get("language"),
        )
        self._channels.add(channel)
        self._work[conversation_id] = work
        agent = self._agent(agent_id)
        last = agent.last_assigned
        self._take(agent, work, last)
        if offer_expires is not None:
            work.offer_expires = offer_expires
            self._timer(offer_expires, "offer", conversation_id)

    # -- taking and releasing capacity ---------------------------------------------------------------------------
    def _take(self, agent: AgentState, work: Work, now: float) -> None:
        """Agent takes the work: capacity is consumed now (an offer reserves it)."""
        self._waiting_list(work.queue_id, work.channel).discard(work.key)
        self._unindex(agent)
        agent.load[work.channel] = agent.load.get(work.channel, 0) + 1
        agent.last_assigned = now
        agent.work.add(work.conversation_id)
        self._index(agent)
        work.agent_id = agent.spec.id

    def _release(self, agent: AgentState, work: Work) -> None:
        self._unindex(agent)
        agent.load[work.channel] = max(0, agent.load.get(work.channel, 0) - 1)
        agent.work.discard(work.conversation_id)
        self._index(agent)
        work.agent_id = None
        work.offer_expires = None

    def _timer(self, due: float, kind: str, conversation_id: str) -> None:
        heapq.heappush(self._timers, (due, next(self._seq), kind, conversation_id))

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
        lists = [w for (q, _), w in self._waiting.items() if queue_id is None or q == queue_id]
        keys = sorted(itertools.chain.from_iterable(lists))
        return [self._work[k[2]] for k in keys]

    def waiting_counts(self) -> dict[str, int]:
        """How many wait in each queue (every queue listed, empty ones as 0)."""
        counts = dict.fromkeys(self.queues, 0)
        for (queue_id, _), waiting in self._waiting.items():
            counts[queue_id] = counts.get(queue_id, 0) + len(waiting)
        return counts

    def work(self, conversation_id: str) -> Work | None:
        return self._work.get(conversation_id)

    def agent_load(self, agent_id: str) -> dict[str, int]:
        return dict(self._agent(agent_id).load)

    def agent_work(self, agent_id: str) -> set[str]:
        return set(self._agent(agent_id).work)

    def presence(self, agent_id: str) -> Presence:
        return self._agent(agent_id).presence

    def agents(self) -> Iterable[str]:
        return self._agents.keys()
