"""The routing engine: one tenant's routing state in memory, indexed so a decision never scans every agent or
every waiting conversation. Pure: every method takes the time and returns the decisions as events.

Indexes, per (queue, channel):
- ``_room``: online agents with room on that channel, ordered (total load, last assignment, id): the head is
  the least-loaded, longest-idle agent (round robin keeps its own rotation).
- ``_waiting``: waiting conversations ordered by *virtual time* = arrival - priority boost (tier, escalation).
  Ordering by virtual time is aging built in: work that arrived at t is served before anything whose
  virtual time is later, so higher tiers go first but nothing waits more than its boost behind them.

Strategies per queue: least_loaded (longest idle on a tie), round_robin, sticky (the customer's previous agent
first, held for ``sticky_wait_s`` if that agent is online but busy), manual (agents claim). Offers (accept /
decline / timeout → next agent; ``max_declines`` → escalate), overflow after a wait threshold, business hours,
transfers, and presence changes (offline unassigns; the work keeps its original priority).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sortedcontainers import SortedList

from services.router.domain.business_hours import BusinessHours
from services.router.domain.errors import InvalidCommand, NotFound
from services.router.domain.model import Presence
from services.router.domain.rules import Rule, matches

# Seconds of head start per tier: a gold customer is served as if they had arrived 5 minutes earlier.
TIER_BOOST_S: dict[str, float] = {"standard": 0.0, "silver": 60.0, "gold": 300.0, "platinum": 900.0}
ESCALATION_BOOST_S = 600.0


class Strategy(StrEnum):
    LEAST_LOADED = "least_loaded"
    ROUND_ROBIN = "round_robin"
    STICKY = "sticky"
    MANUAL = "manual"


@dataclass
class QueueSpec:
    id: str
    name: str = ""
    rule: Rule = field(default_factory=dict)
    order: int = 0  # lower is tried first when several queues match
    is_default: bool = False
    strategy: Strategy = Strategy.LEAST_LOADED
    sticky_wait_s: float = 60.0
    offer_timeout_s: float | None = None  # None: assign directly, no offer
    max_declines: int = 3
    overflow_after_s: float | None = None
    overflow_to: str | None = None
    hours: BusinessHours | None = None
    skills: Mapping[str, int] | None = None  # what an agent needs (skill → minimum level) for this queue's work
    sla: Mapping[str, Any] | None = None  # target overrides and escalation actions (domain/sla.py); not routing


@dataclass
class AgentSpec:
    id: str
    queues: frozenset[str]
    capacity: dict[str, int]
    skills: dict[str, int] = field(default_factory=dict)
    languages: frozenset[str] = frozenset()


@dataclass(slots=True)
class Work:
    """One conversation needing (or having) an agent. Kept small: 500k of these may wait."""

    conversation_id: str
    channel: str
    queue_id: str
    enqueued_at: float
    virtual_time: float
    seq: int
    language: str | None = None
    skills: Mapping[str, int] | None = None
    previous_agent: str | None = None
    reserved_until: float = 0.0  # sticky: held for previous_agent until then
    agent_id: str | None = None
    offer_expires: float | None = None
    declined_by: set[str] | None = None
    declines: int = 0
    overflowed: bool = False
    acknowledged: bool = False

    @property
    def key(self) -> tuple[float, int, str]:
        return (self.virtual_time, self.seq, self.conversation_id)


@dataclass(slots=True)
class _Agent:
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


# -- decisions -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Queued:
    conversation_id: str
    queue_id: str


@dataclass(frozen=True, slots=True)
class Offered:
    conversation_id: str
    agent_id: str
    queue_id: str
    channel: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class Assigned:
    conversation_id: str
    agent_id: str
    queue_id: str
    channel: str
    at: float
    reason: str = "routed"  # routed, accepted, sticky, claimed, transferred


@dataclass(frozen=True, slots=True)
class Unassigned:
    conversation_id: str
    agent_id: str
    reason: str  # agent_offline, declined, offer_timeout, transferred, resolved


@dataclass(frozen=True, slots=True)
class Escalated:
    conversation_id: str
    from_queue: str
    to_queue: str
    reason: str  # waited_too_long, declined_too_often


@dataclass(frozen=True, slots=True)
class AutoAcknowledged:
    conversation_id: str
    queue_id: str
    expected_response_at: float | None


Decision = Queued | Offered | Assigned | Unassigned | Escalated | AutoAcknowledged


def _ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


class RoutingEngine:
    def __init__(self) -> None:
        self.queues: dict[str, QueueSpec] = {}
        self._queue_order: list[QueueSpec] = []
        self._agents: dict[str, _Agent] = {}
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
            self._agents[spec.id] = _Agent(spec)
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

    def _indexable(self, agent: _Agent, queue_id: str) -> bool:
        return agent.presence is Presence.ONLINE and queue_id in agent.spec.queues

    def _index(self, agent: _Agent) -> None:
        for (queue_id, channel), room in self._room.items():
            if self._indexable(agent, queue_id) and agent.has_room(channel):
                room.add(agent.rank)

    def _unindex(self, agent: _Agent) -> None:
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

    # -- arrivals ---------------------------------------------------------------------------------------------
    def arrive(
        self,
        conversation_id: str,
        channel: str,
        attrs: Mapping[str, Any],
        now: float,
        *,
        previous_agent: str | None = None,
        enqueued_at: float | None = None,
    ) -> list[Decision]:
        """A conversation needs an agent: queue it by rule and assign it if someone eligible has room."""
        self._now = now
        if conversation_id in self._work:
            return []
        queue = self.select_queue({**attrs, "channel": channel})
        if queue is None:
            raise InvalidCommand("no queue takes this conversation and there is no default queue")
        arrived = now if enqueued_at is None else enqueued_at
        tier = str(attrs.get("tier") or "standard")
        work = Work(
            conversation_id=conversation_id,
            channel=channel,
            queue_id=queue.id,
            enqueued_at=arrived,
            virtual_time=arrived - TIER_BOOST_S.get(tier, 0.0) - float(attrs.get("urgency_s") or 0.0),
            seq=next(self._seq),
            language=attrs.get("language"),
            skills=attrs.get("skills") or queue.skills or None,
            previous_agent=previous_agent,
        )
        self._channels.add(channel)
        self._work[conversation_id] = work
        return self._place(work, now)

    def _place(self, work: Work, now: float) -> list[Decision]:
        queue = self.queues[work.queue_id]
        out: list[Decision] = [Queued(work.conversation_id, queue.id)]
        self._waiting_list(queue.id, work.channel).add(work.key)
        if queue.overflow_after_s is not None and queue.overflow_to and not work.overflowed:
            self._timer(work.enqueued_at + queue.overflow_after_s, "overflow", work.conversation_id)
        if not self._is_open(queue, now):
            if not work.acknowledged:
                work.acknowledged = True
                nxt = queue.hours.next_open(_ts(now)) if queue.hours else None
                out.append(AutoAcknowledged(work.conversation_id, queue.id, nxt.timestamp() if nxt else None))
            return out
        if queue.strategy is Strategy.MANUAL:
            return out
        agent = self._sticky_agent(work, queue, now)
        if agent is None and work.reserved_until > now:
            return out  # held for the previous agent a little longer
        agent = agent or self._best_agent(work, queue)
        if agent is not None:
            out += self._give(work, agent, now, "sticky" if agent.spec.id == work.previous_agent else "routed")
        return out

    def _sticky_agent(self, work: Work, queue: QueueSpec, now: float) -> _Agent | None:
        if queue.strategy is not Strategy.STICKY or not work.previous_agent:
            return None
        agent = self._agents.get(work.previous_agent)
        if agent is None or agent.presence is not Presence.ONLINE or queue.id not in agent.spec.queues:
            return None
        if agent.has_room(work.channel) and self._eligible(agent, work):
            return agent
        if work.reserved_until == 0.0 and work.enqueued_at + queue.sticky_wait_s > now:
            work.reserved_until = work.enqueued_at + queue.sticky_wait_s
            self._timer(work.reserved_until, "sticky", work.conversation_id)
        return None

    def _eligible(self, agent: _Agent, work: Work, *, ignore_reservation: bool = False) -> bool:
        if work.declined_by and agent.spec.id in work.declined_by:
            return False
        if work.language and agent.spec.languages and work.language not in agent.spec.languages:
            return False
        if work.skills and any(agent.spec.skills.get(s, 0) < lvl for s, lvl in work.skills.items()):
            return False
        return not (
            not ignore_reservation
            and work.previous_agent
            and work.previous_agent != agent.spec.id
            and work.reserved_until > 0
            and work.reserved_until > self._now
        )

    _now: float = 0.0

    def _best_agent(self, work: Work, queue: QueueSpec) -> _Agent | None:
        room = self._room_list(queue.id, work.channel)
        if queue.strategy is Strategy.ROUND_ROBIN:
            by_id = sorted(rank[2] for rank in room)  # the rotation order
            if not by_id:
                return None
            start = next((i for i, a in enumerate(by_id) if a > self._rr_cursor.get(queue.id, "")), 0)
            for agent_id in by_id[start:] + by_id[:start]:
                agent = self._agents[agent_id]
                if self._eligible(agent, work):
                    self._rr_cursor[queue.id] = agent_id
                    return agent
            return None
        for _, _, agent_id in room:
            agent = self._agents[agent_id]
            if self._eligible(agent, work):
                return agent
        return None

    # -- giving work to agents ----------------------------------------------------------------------------------
    def _take(self, agent: _Agent, work: Work, now: float) -> None:
        """Agent takes the work: capacity is consumed now (an offer reserves it)."""
        self._waiting_list(work.queue_id, work.channel).discard(work.key)
        self._unindex(agent)
        agent.load[work.channel] = agent.load.get(work.channel, 0) + 1
        agent.last_assigned = now
        agent.work.add(work.conversation_id)
        self._index(agent)
        work.agent_id = agent.spec.id

    def _release(self, agent: _Agent, work: Work) -> None:
        self._unindex(agent)
        agent.load[work.channel] = max(0, agent.load.get(work.channel, 0) - 1)
        agent.work.discard(work.conversation_id)
        self._index(agent)
        work.agent_id = None
        work.offer_expires = None

    def _give(self, work: Work, agent: _Agent, now: float, reason: str) -> list[Decision]:
        queue = self.queues[work.queue_id]
        self._take(agent, work, now)
        if queue.offer_timeout_s is not None and reason != "claimed":
            work.offer_expires = now + queue.offer_timeout_s
            self._timer(work.offer_expires, "offer", work.conversation_id)
            return [Offered(work.conversation_id, agent.spec.id, queue.id, work.channel, work.offer_expires)]
        return [Assigned(work.conversation_id, agent.spec.id, queue.id, work.channel, now, reason)]

    def _fill(self, agent: _Agent, now: float) -> list[Decision]:
        """The agent has room: give them the earliest waiting work they can take, until full or none fits."""
        out: list[Decision] = []
        while agent.presence is Presence.ONLINE:
            best: Work | None = None
            for queue_id in agent.spec.queues:
                queue = self.queues.get(queue_id)
                if queue is None or queue.strategy is Strategy.MANUAL or not self._is_open(queue, now):
                    continue
                for channel in self._channels:
                    if not agent.has_room(channel):
                        continue
                    waiting = self._waiting.get((queue_id, channel))
                    if not waiting:
                        continue
                    for key in waiting:
                        if best is not None and key >= best.key:
                            break
                        work = self._work[key[2]]
                        if self._eligible(agent, work):
                            best = work
                            break
            if best is None:
                return out
            out += self._give(best, agent, now, "sticky" if agent.spec.id == best.previous_agent else "routed")
        return out

    # -- agent commands -------------------------------------------------------------------------------------------
    def set_presence(self, agent_id: str, presence: Presence, now: float) -> list[Decision]:
        self._now = now
        agent = self._agent(agent_id)
        self._unindex(agent)
        agent.presence = presence
        self._index(agent)
        out: list[Decision] = []
        if presence is Presence.OFFLINE:
            # their conversations go back to the queue at their original priority
            for conversation_id in sorted(agent.work):
                work = self._work[conversation_id]
                self._release(agent, work)
                out.append(Unassigned(conversation_id, agent_id, "agent_offline"))
                out += self._place(work, now)
        elif presence is Presence.ONLINE:
            out += self._fill(agent, now)
        return out

    def accept(self, agent_id: str, conversation_id: str, now: float) -> list[Decision]:
        self._now = now
        work = self._owned(agent_id, conversation_id)
        if work.offer_expires is None:
            raise InvalidCommand("there is no open offer of this conversation to this agent")
        work.offer_expires = None
        return [Assigned(conversation_id, agent_id, work.queue_id, work.channel, now, "accepted")]

    def decline(
        self, agent_id: str, conversation_id: str, now: float, reason: str = "declined", *, offered_only: bool = True
    ) -> list[Decision]:
        """The agent does not take it (declined, offer timed out, or — ``offered_only=False`` — a call put
        through to them rang out): the next eligible agent gets it; after ``max_declines`` it escalates."""
        self._now = now
        work = self._owned(agent_id, conversation_id)
        if offered_only and work.offer_expires is None:
            raise InvalidCommand("there is no open offer of this conversation to this agent")
        agent = self._agents[agent_id]
        self._release(agent, work)
        work.declined_by = (work.declined_by or set()) | {agent_id}
        work.declines += 1
        out: list[Decision] = [Unassigned(conversation_id, agent_id, reason)]
        queue = self.queues[work.queue_id]
        if work.declines >= queue.max_declines:
            out += self._escalate(work, "declined_too_often")
        out += self._place(work, now)
        out += self._fill(agent, now)
        return out

    def resolve(self, conversation_id: str, now: float) -> list[Decision]:
        self._now = now
        work = self._work.pop(conversation_id, None)
        if work is None:
            raise NotFound(f"no routed conversation {conversation_id}")
        out: list[Decision] = []
        if work.agent_id is not None:
            agent = self._agents[work.agent_id]
            self._release(agent, work)
            out.append(Unassigned(conversation_id, agent.spec.id, "resolved"))
            out += self._fill(agent, now)
        else:
            self._waiting_list(work.queue_id, work.channel).discard(work.key)
        return out

    def claim(self, agent_id: str, conversation_id: str, now: float) -> list[Decision]:
        """Manual pull: an agent takes a waiting conversation from a queue they serve."""
        self._now = now
        agent = self._agent(agent_id)
        work = self._work.get(conversation_id)
        if work is None or work.agent_id is not None:
            raise InvalidCommand("the conversation is not waiting")
        if agent.presence is not Presence.ONLINE or work.queue_id not in agent.spec.queues:
            raise InvalidCommand("the agent is not online in that queue")
        if not agent.has_room(work.channel):
            raise InvalidCommand("the agent has no room on that channel")
        return self._give(work, agent, now, "claimed")

    def transfer_to_agent(self, conversation_id: str, to_agent: str, now: float) -> list[Decision]:
        self._now = now
        work = self._work.get(conversation_id)
        if work is None:
            raise NotFound(f"no routed conversation {conversation_id}")
        target = self._agent(to_agent)
        if target.presence is not Presence.ONLINE or not target.has_room(work.channel):
            raise InvalidCommand("the target agent is not online with room on that channel")
        out: list[Decision] = []
        if work.agent_id is not None:
            source = self._agents[work.agent_id]
            self._release(source, work)
            out.append(Unassigned(conversation_id, source.spec.id, "transferred"))
            out += self._fill(source, now)
        else:
            self._waiting_list(work.queue_id, work.channel).discard(work.key)
        self._take(target, work, now)
        out.append(Assigned(conversation_id, to_agent, work.queue_id, work.channel, now, "transferred"))
        return out

    def transfer_to_queue(self, conversation_id: str, queue_id: str, now: float) -> list[Decision]:
        self._now = now
        work = self._work.get(conversation_id)
        if work is None:
            raise NotFound(f"no routed conversation {conversation_id}")
        if queue_id not in self.queues:
            raise NotFound(f"no queue {queue_id}")
        out: list[Decision] = []
        source: _Agent | None = None
        if work.agent_id is not None:
            source = self._agents[work.agent_id]
            self._release(source, work)
            out.append(Unassigned(conversation_id, source.spec.id, "transferred"))
        else:
            self._waiting_list(work.queue_id, work.channel).discard(work.key)
        work.queue_id = queue_id
        work.declined_by = {source.spec.id} if source else None
        out += self._place(work, now)
        if source is not None:
            out += self._fill(source, now)
        return out

    def switch_channel(self, conversation_id: str, channel: str, now: float) -> list[Decision]:
        """The customer moved to another channel mid-conversation (a phone call on a chat): the work now takes
        capacity on that channel. Its agent keeps it if they have room there; otherwise it waits for someone
        who has (that agent first, as a sticky preference)."""
        self._now = now
        work = self._work.get(conversation_id)
        if work is None or work.channel == channel:
            return []
        self._channels.add(channel)
        if work.agent_id is None:
            self._waiting_list(work.queue_id, work.channel).discard(work.key)
            work.channel = channel
            return self._place(work, now)
        agent = self._agents[work.agent_id]
        offered = work.offer_expires is not None
        self._release(agent, work)
        out: list[Decision] = [Unassigned(conversation_id, agent.spec.id, "channel_switched")]
        work.channel = channel
        if agent.presence is Presence.ONLINE and agent.has_room(channel) and not offered:
            self._take(agent, work, now)
            out.append(Assigned(conversation_id, agent.spec.id, work.queue_id, channel, now, "channel_switched"))
            return out + self._fill(agent, now)  # the channel it left has room now
        work.previous_agent = agent.spec.id
        out += self._place(work, now)
        return out + self._fill(agent, now)

    def escalate(self, conversation_id: str, to_queue: str | None, now: float, reason: str = "sla") -> list[Decision]:
        """An SLA is about to break (or broke): waiting work jumps ahead (and moves to ``to_queue`` if given);
        work an agent holds moves to ``to_queue`` if given, else stays (the escalation is recorded)."""
        self._now = now
        work = self._work.get(conversation_id)
        if work is None:
            return []
        target = to_queue if to_queue in self.queues else work.queue_id
        if work.agent_id is not None:
            out: list[Decision] = [Escalated(conversation_id, work.queue_id, target, reason)]
            if target != work.queue_id:
                out += self.transfer_to_queue(conversation_id, target, now)
            return out
        self._waiting_list(work.queue_id, work.channel).discard(work.key)
        out = [Escalated(conversation_id, work.queue_id, target, reason)]
        work.virtual_time -= ESCALATION_BOOST_S
        if target != work.queue_id:
            work.queue_id = target
            work.declined_by = None
        return out + self._place(work, now)

    # -- time ----------------------------------------------------------------------------------------------------
    def due(self, now: float) -> bool:
        """Whether ``tick(now)`` has anything to do: a timer fell due or a queue opened or closed."""
        if self._timers and self._timers[0][0] <= now:
            return True
        return any(
            q.hours is not None and q.hours.is_open(_ts(now)) != self._open.get(q.id, True)
            for q in self.queues.values()
        )

    def tick(self, now: float) -> list[Decision]:
        """Offer timeouts, overflow, sticky holds ending, queues opening: everything due by ``now``."""
        self._now = now
        out: list[Decision] = []
        for queue in self.queues.values():
            if queue.hours is None:
                continue
            was, is_open = self._open.get(queue.id, True), queue.hours.is_open(_ts(now))
            self._open[queue.id] = is_open
            if is_open and not was:
                for agent in list(self._agents.values()):
                    if queue.id in agent.spec.queues:
                        out += self._fill(agent, now)
        while self._timers and self._timers[0][0] <= now:
            _, _, kind, conversation_id = heapq.heappop(self._timers)
            work = self._work.get(conversation_id)
            if work is None:
                continue
            if kind == "offer" and work.offer_expires is not None and work.offer_expires <= now and work.agent_id:
                out += self.decline(work.agent_id, conversation_id, now, reason="offer_timeout")
            elif kind == "overflow" and work.agent_id is None and not work.overflowed:
                queue = self.queues[work.queue_id]
                if queue.overflow_to in self.queues:
                    self._waiting_list(work.queue_id, work.channel).discard(work.key)
                    out += self._escalate(work, "waited_too_long")
                    out += self._place(work, now)
            elif kind == "sticky" and work.agent_id is None and work.reserved_until > 0:
                work.reserved_until = -1.0  # the hold is over for good: anyone may take it now
                self._waiting_list(work.queue_id, work.channel).discard(work.key)
                out += self._place(work, now)
        return out

    # -- helpers --------------------------------------------------------------------------------------------------
    def _escalate(self, work: Work, reason: str) -> list[Decision]:
        queue = self.queues[work.queue_id]
        target = queue.overflow_to if queue.overflow_to in self.queues else queue.id
        work.overflowed = True
        work.virtual_time -= ESCALATION_BOOST_S
        if target != queue.id:
            work.declined_by = None  # a wider team gets a fresh chance
            work.declines = 0
        work.queue_id = target
        return [Escalated(work.conversation_id, queue.id, target, reason)]

    def _is_open(self, queue: QueueSpec, now: float) -> bool:
        return queue.hours is None or queue.hours.is_open(_ts(now))

    def _timer(self, due: float, kind: str, conversation_id: str) -> None:
        heapq.heappush(self._timers, (due, next(self._seq), kind, conversation_id))

    def _agent(self, agent_id: str) -> _Agent:
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

    def can_take(self, agent_id: str, conversation_id: str) -> bool:
        """Whether this agent could be given this waiting work right now (for invariants and views)."""
        agent, work = self._agents[agent_id], self._work[conversation_id]
        queue = self.queues[work.queue_id]
        return (
            work.agent_id is None
            and agent.presence is Presence.ONLINE
            and work.queue_id in agent.spec.queues
            and queue.strategy is not Strategy.MANUAL
            and self._is_open(queue, self._now)
            and agent.has_room(work.channel)
            and self._eligible(agent, work)
        )
