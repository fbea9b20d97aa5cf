"""Where work goes: arrivals queued by rule, and the queue's strategy choosing among eligible agents with room
(sticky holds, offers, business hours, escalation to a wider queue). The engine's commands
(``routing/engine.py``) change state through these steps; the indexes they keep are ``routing/state.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from services.router.domain.errors import InvalidCommand
from services.router.domain.model import Presence
from services.router.domain.routing.decisions import (
    Assigned,
    AutoAcknowledged,
    Decision,
    Escalated,
    Offered,
    PresenceChanged,
    Queued,
)
from services.router.domain.routing.selection import best_agent, eligible, meets
from services.router.domain.routing.specs import ESCALATION_BOOST_S, TIER_BOOST_S, QueueSpec, Strategy, Work
from services.router.domain.routing.state import AgentState, RoutingState
from services.router.domain.sla import TimerKind, target_s


def ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _preferences(work: Work, queue: QueueSpec) -> list[tuple[str, float]]:
    preferences = [(work.owner, queue.owner_wait_s)] if work.owner else []
    if queue.strategy is Strategy.STICKY and work.previous_agent and work.previous_agent != work.owner:
        preferences.append((work.previous_agent, queue.sticky_wait_s))
    return preferences


def reason_for(work: Work, agent_id: str) -> str:
    """Why the work goes to this agent, as the assignment says: their owner, the agent who last helped, or
    the queue's strategy."""
    if agent_id == work.owner:
        return "owner"
    return "sticky" if agent_id == work.previous_agent else "routed"


class Placement(RoutingState):
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
        work = self._new_work(conversation_id, channel, None, attrs, now if enqueued_at is None else enqueued_at)
        work.previous_agent = previous_agent
        work.owner = attrs.get("owner_agent_id") or None
        if float(attrs.get("not_before") or 0.0) > now:  # a callback for later: it waits for its window
            work.not_before = float(attrs["not_before"])
            self._timer(work.not_before, "window", work)
        self._channels.add(channel)
        self._work[conversation_id] = work
        return self._place(work, now)

    def adopt(
        self,
        conversation_id: str,
        channel: str,
        queue_id: str | None,
        attrs: Mapping[str, Any],
        enqueued_at: float,
        agent_id: str,
    ) -> None:
        """Work the store says an agent holds but has no routing fact for (stored before facts were): it takes
        that agent's capacity, in its stored queue (rebuilds only)."""
        work = self._new_work(conversation_id, channel, queue_id, attrs, enqueued_at)
        work.agent_id = agent_id
        self.restore_work(work)

    def _new_work(
        self, conversation_id: str, channel: str, queue_id: str | None, attrs: Mapping[str, Any], arrived: float
    ) -> Work:
        queue = self.queues.get(queue_id or "") or self.select_queue({**attrs, "channel": channel})
        if queue is None:
            raise InvalidCommand("no queue takes this conversation and there is no default queue")
        tier = str(attrs.get("tier") or "standard")
        if queue.priority == "deadline":  # the promise to keep first: the tier's is in its target already
            start = arrived + target_s(TimerKind.FIRST_RESPONSE, channel, tier, queue.sla)
        else:
            start = arrived - TIER_BOOST_S.get(tier, 0.0)
        work = Work(
            conversation_id=conversation_id,
            channel=channel,
            queue_id=queue.id,
            enqueued_at=arrived,
            virtual_time=start - float(attrs.get("urgency_s") or 0.0),
            seq=self._new_seq(),
            language=attrs.get("language"),
            skills=attrs.get("skills") or queue.skills or None,
            tier=tier,
        )
        if queue.steps:
            self._enter(work, queue, 0)
        return work

    def _enter(self, work: Work, queue: QueueSpec, step: int) -> None:
        """The work is at this step of its queue's widening: its requirements are the step's, and the next
        step has a timer (from arrival: the work keeps its place)."""
        current = queue.steps[step]
        work.step, work.only, work.skills = step, current.agents, current.skills or None
        work.pool = current.queue if current.queue != queue.id else None
        self._touched_work.add(work.conversation_id)
        if step + 1 < len(queue.steps):
            self._timer(work.enqueued_at + queue.steps[step + 1].after_s, "step", work)

    def _requirements_of(self, work: Work, queue: QueueSpec) -> None:
        """Moved to another queue: its requirements are that queue's (its first step's), not the old queue's."""
        work.step, work.only, work.skills, work.pool = 0, None, queue.skills or None, None
        if queue.steps:
            self._enter(work, queue, 0)

    def _place(self, work: Work, now: float) -> list[Decision]:
        queue = self.queues[work.queue_id]
        out: list[Decision] = [Queued(work.conversation_id, queue.id)]
        self._touched_work.add(work.conversation_id)
        self._line(work).add(work.key)
        if queue.overflow_after_s is not None and queue.overflow_to and not work.overflowed:
            self._timer(work.enqueued_at + queue.overflow_after_s, "overflow", work)
        if not self._is_open(queue, now):
            if not work.acknowledged:
                work.acknowledged = True
                nxt = queue.hours.next_open(ts(now)) if queue.hours else None
                out.append(AutoAcknowledged(work.conversation_id, queue.id, nxt.timestamp() if nxt else None))
            return out
        if queue.strategy is Strategy.MANUAL or work.not_before > now:
            return out
        agent, held = self._preferred(work, queue, now)
        if held:
            return out  # held for a preferred agent a little longer
        agent = agent or self._best_agent(work, queue, now)
        if agent is not None:
            out += self._give(work, agent, now, reason_for(work, agent.spec.id))
        return out

    def _preferred(self, work: Work, queue: QueueSpec, now: float) -> tuple[AgentState | None, bool]:
        """The customer's named owner, then (sticky queues) the agent who last helped them: the first who is
        online in the queue gets the work if they have room; if busy, the work is held for them for that
        preference's wait limit (from arrival for the first, from the previous one's end after), then the next
        preference is tried, then anyone. Returns the agent to give it to now, or whether it is held."""
        preferences = _preferences(work, queue)
        while work.stage < len(preferences):
            agent_id, wait_s = preferences[work.stage]
            agent = self._agents.get(agent_id)
            if (
                agent is not None
                and agent.presence is Presence.ONLINE
                and queue.id in agent.spec.queues
                and eligible(agent, work, now, ignore_reservation=True)
            ):
                if agent.has_room(work.channel):
                    return agent, False
                if work.held_for != agent_id:
                    work.held_for = agent_id
                    work.reserved_until = (work.enqueued_at if work.stage == 0 else now) + wait_s
                    self._timer(work.reserved_until, "hold", work)
                if work.reserved_until > now:
                    return None, True
            work.stage += 1  # this preference is unavailable, or its hold is over: the next one
            work.held_for, work.reserved_until = None, 0.0
        return None, False

    def _best_agent(self, work: Work, queue: QueueSpec, now: float) -> AgentState | None:
        room = self._room_list(work.pool or queue.id, work.channel)
        return best_agent(room, self._agents, work, queue, self._rr_cursor, now)

    # -- giving work to agents ----------------------------------------------------------------------------------
    def _give(self, work: Work, agent: AgentState, now: float, reason: str) -> list[Decision]:
        queue = self.queues[work.queue_id]
        self._take(agent, work, now)
        if queue.offer_timeout_s is not None and reason != "claimed":
            work.offer_expires = now + queue.offer_timeout_s
            self._timer(work.offer_expires, "offer", work)
            return [Offered(work.conversation_id, agent.spec.id, queue.id, work.channel, work.offer_expires)]
        return [Assigned(work.conversation_id, agent.spec.id, queue.id, work.channel, now, reason)]

    def _fill(self, agent: AgentState, now: float) -> list[Decision]:
        """The agent has room: give them the earliest waiting work they can take, until full or none fits."""
        out: list[Decision] = []
        while agent.presence is Presence.ONLINE:
            best: Work | None = None
            for (queue_id, channel, wanted), line in self._waiting.items():
                # taken by the agents of its own queue, or of the queue its step names
                if not line or (wanted[3] or queue_id) not in agent.spec.queues or not agent.has_room(channel):
                    continue
                queue = self.queues.get(queue_id)
                if queue is None or queue.strategy is Strategy.MANUAL or not self._is_open(queue, now):
                    continue
                if not meets(agent, wanted):
                    continue  # the whole line asks for someone else
                for key in line:
                    if best is not None and key >= best.key:
                        break
                    work = self._work[key[2]]
                    if eligible(agent, work, now):
                        best = work
                        break
            if best is None:
                return out
            out += self._give(best, agent, now, reason_for(best, agent.spec.id))
        return out

    def _change_presence(self, agent: AgentState, presence: Presence, reason: str) -> list[Decision]:
        self._unindex(agent)
        agent.presence = presence
        self._index(agent)
        self._touched_agents.add(agent.spec.id)
        return [PresenceChanged(agent.spec.id, presence.value, reason)]

    def _exclude(self, work: Work, agent_id: str, until: float) -> None:
        work.declined_by = {**(work.declined_by or {}), agent_id: until}
        self._timer(until, "exclusion", work)

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
        if target != queue.id:
            self._requirements_of(work, self.queues[target])
        return [Escalated(work.conversation_id, queue.id, target, reason)]

    def _is_open(self, queue: QueueSpec, now: float) -> bool:
        return queue.hours is None or queue.hours.is_open(ts(now))
