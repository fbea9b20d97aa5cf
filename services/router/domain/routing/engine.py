"""The routing engine: who gets which conversation, and when. Every method takes the time and returns its
decisions (``routing/decisions.py``); the indexed state it decides over is ``routing/state.py``.

Strategies per queue: least_loaded (longest idle on a tie), round_robin, sticky (the customer's previous agent
first, held for ``sticky_wait_s`` if that agent is online but busy), manual (agents claim). Offers (accept /
decline / timeout → next agent; ``max_declines`` → escalate), overflow after a wait threshold, business hours,
transfers, and presence changes (offline unassigns; the work keeps its original priority). Waiting work is
served in virtual-time order (``routing/specs.py``): priority with aging built in.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from services.router.domain.errors import InvalidCommand, NotFound
from services.router.domain.model import Presence
from services.router.domain.routing.decisions import (
    Assigned,
    AutoAcknowledged,
    Decision,
    Escalated,
    Offered,
    Queued,
    Unassigned,
)
from services.router.domain.routing.selection import best_agent, eligible
from services.router.domain.routing.specs import ESCALATION_BOOST_S, TIER_BOOST_S, QueueSpec, Strategy, Work
from services.router.domain.routing.state import AgentState, RoutingState


def _ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


class RoutingEngine(RoutingState):
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
        if agent is None and queue.strategy is Strategy.STICKY and work.reserved_until > now:
            return out  # held for the previous agent a little longer (only a sticky queue holds work)
        agent = agent or self._best_agent(work, queue, now)
        if agent is not None:
            out += self._give(work, agent, now, "sticky" if agent.spec.id == work.previous_agent else "routed")
        return out

    def _sticky_agent(self, work: Work, queue: QueueSpec, now: float) -> AgentState | None:
        if queue.strategy is not Strategy.STICKY or not work.previous_agent:
            return None
        agent = self._agents.get(work.previous_agent)
        if agent is None or agent.presence is not Presence.ONLINE or queue.id not in agent.spec.queues:
            return None
        if agent.has_room(work.channel) and eligible(agent, work, now):
            return agent
        if work.reserved_until == 0.0 and work.enqueued_at + queue.sticky_wait_s > now:
            work.reserved_until = work.enqueued_at + queue.sticky_wait_s
            self._timer(work.reserved_until, "sticky", work.conversation_id)
        return None

    def _best_agent(self, work: Work, queue: QueueSpec, now: float) -> AgentState | None:
        room = self._room_list(queue.id, work.channel)
        return best_agent(room, self._agents, work, queue, self._rr_cursor, now)

    # -- giving work to agents ----------------------------------------------------------------------------------
    def _give(self, work: Work, agent: AgentState, now: float, reason: str) -> list[Decision]:
        queue = self.queues[work.queue_id]
        self._take(agent, work, now)
        if queue.offer_timeout_s is not None and reason != "claimed":
            work.offer_expires = now + queue.offer_timeout_s
            self._timer(work.offer_expires, "offer", work.conversation_id)
            return [Offered(work.conversation_id, agent.spec.id, queue.id, work.channel, work.offer_expires)]
        return [Assigned(work.conversation_id, agent.spec.id, queue.id, work.channel, now, reason)]

    def _fill(self, agent: AgentState, now: float) -> list[Decision]:
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
                        if eligible(agent, work, now):
                            best = work
                            break
            if best is None:
                return out
            out += self._give(best, agent, now, "sticky" if agent.spec.id == best.previous_agent else "routed")
        return out

    # -- agent commands -------------------------------------------------------------------------------------------
    def set_presence(self, agent_id: str, presence: Presence, now: float) -> list[Decision]:
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
        work = self._work.get(conversation_id)
        if work is None:
            raise NotFound(f"no routed conversation {conversation_id}")
        if queue_id not in self.queues:
            raise NotFound(f"no queue {queue_id}")
        out: list[Decision] = []
        source: AgentState | None = None
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

    # -- escalation and opening hours ------------------------------------------------------------------------------
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

    # -- views -----------------------------------------------------------------------------------------------------
    def can_take(self, agent_id: str, conversation_id: str, now: float) -> bool:
        """Whether this agent could be given this waiting work at ``now`` (for invariants and views)."""
        agent, work = self._agents[agent_id], self._work[conversation_id]
        queue = self.queues[work.queue_id]
        return (
            work.agent_id is None
            and agent.presence is Presence.ONLINE
            and work.queue_id in agent.spec.queues
            and queue.strategy is not Strategy.MANUAL
            and self._is_open(queue, now)
            and agent.has_room(work.channel)
            and eligible(agent, work, now)
        )
