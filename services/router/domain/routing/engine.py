"""The routing engine: who gets which conversation, and when. Every method takes the time and returns its
decisions (``routing/decisions.py``); the indexed state it decides over is ``routing/state.py``.

Strategies per queue: least_loaded (longest idle on a tie), round_robin, sticky (the customer's previous agent
first, held for ``sticky_wait_s`` if that agent is online but busy), manual (agents claim). Offers (accept /
decline / timeout → next agent; ``max_declines`` → escalate), overflow after a wait threshold, business hours,
transfers, and presence changes (offline unassigns; the work keeps its original priority). Waiting work is
served in virtual-time order (``routing/specs.py``): priority with aging built in. How work is placed is
``routing/placement.py``; everything the engine holds is stored as facts (``routing/facts.py``) so a rebuild
restores it exactly.
"""

from __future__ import annotations

import heapq

from services.router.domain.errors import InvalidCommand, NotFound
from services.router.domain.model import Presence
from services.router.domain.routing.decisions import Assigned, Decision, Escalated, Unassigned
from services.router.domain.routing.placement import Placement, ts
from services.router.domain.routing.selection import eligible
from services.router.domain.routing.specs import ESCALATION_BOOST_S, Strategy, Work
from services.router.domain.routing.state import AgentState


class RoutingEngine(Placement):
    # -- agent commands -------------------------------------------------------------------------------------------
    def set_presence(self, agent_id: str, presence: Presence, now: float, reason: str = "agent") -> list[Decision]:
        """``reason``: who or what changed it (the agent, a supervisor, a missed offer, a lost connection). Offline
        hands the agent's conversations back to their queues at their priority; away withdraws open offers;
        online pulls waiting work at once."""
        agent = self._agent(agent_id)
        if agent.presence is presence:
            return self._fill(agent, now)
        out = self._change_presence(agent, presence, reason)
        if presence is Presence.OFFLINE:
            for conversation_id in sorted(agent.work):
                work = self._work[conversation_id]
                self._release(agent, work)
                out.append(Unassigned(conversation_id, agent_id, "agent_offline"))
                out += self._place(work, now)
        elif presence is Presence.AWAY:
            out += self._withdraw_offers(agent, now)
        else:
            out += self._fill(agent, now)
        return out

    def _withdraw_offers(self, agent: AgentState, now: float) -> list[Decision]:
        """Offers the agent has not accepted go to someone else (what they accepted stays theirs)."""
        out: list[Decision] = []
        for conversation_id in sorted(agent.work):
            work = self._work[conversation_id]
            if work.offer_expires is not None:
                self._release(agent, work)
                out.append(Unassigned(conversation_id, agent.spec.id, "offer_withdrawn"))
                out += self._place(work, now)
        return out

    def accept(self, agent_id: str, conversation_id: str, now: float) -> list[Decision]:
        work = self._owned(agent_id, conversation_id)
        if work.offer_expires is None:
            raise InvalidCommand("there is no open offer of this conversation to this agent")
        work.offer_expires = None
        self._touched_work.add(conversation_id)
        return [Assigned(conversation_id, agent_id, work.queue_id, work.channel, now, "accepted")]

    def decline(
        self,
        agent_id: str,
        conversation_id: str,
        now: float,
        reason: str = "declined",
        *,
        offered_only: bool = True,
        exclude: bool = True,
    ) -> list[Decision]:
        """The agent does not take it (declined, offer timed out, or — ``offered_only=False`` — a call put
        through to them rang out): the next eligible agent gets it; after ``max_declines`` it escalates.
        ``exclude``: the agent is not offered it again for the queue's ``decline_exclusion_s``."""
        work = self._owned(agent_id, conversation_id)
        if offered_only and work.offer_expires is None:
            raise InvalidCommand("there is no open offer of this conversation to this agent")
        agent = self._agents[agent_id]
        queue = self.queues[work.queue_id]
        self._release(agent, work)
        if exclude:
            self._exclude(work, agent_id, now + queue.decline_exclusion_s)
        work.declines += 1
        out: list[Decision] = [Unassigned(conversation_id, agent_id, reason)]
        if work.declines >= queue.max_declines:
            out += self._escalate(work, "declined_too_often")
        out += self._place(work, now)
        out += self._fill(agent, now)
        return out

    def _offer_missed(self, work: Work, now: float) -> list[Decision]:
        """An offer ran out. By default the agent is set away (they are not at their desk: TaskRouter moves such
        a worker to a timeout activity) and the work goes to the next agent; they may be offered it again once
        they set themselves online."""
        assert work.agent_id is not None
        agent = self._agents[work.agent_id]
        if self.queues[work.queue_id].on_missed_offer != "away" or agent.presence is not Presence.ONLINE:
            return self.decline(agent.spec.id, work.conversation_id, now, reason="offer_timeout")
        out = self._change_presence(agent, Presence.AWAY, "missed_offer")
        out += self.decline(agent.spec.id, work.conversation_id, now, reason="offer_timeout", exclude=False)
        return out + self._withdraw_offers(agent, now)

    def resolve(self, conversation_id: str, now: float) -> list[Decision]:
        work = self._work.pop(conversation_id, None)
        if work is None:
            raise NotFound(f"no routed conversation {conversation_id}")
        self._touched_work.add(conversation_id)
        return self._let_go(work, "resolved", now)

    def _let_go(self, work: Work, reason: str, now: float) -> list[Decision]:
        """Take ``work`` from its agent, whose freed room goes to the next waiting work at once, or out of its
        queue's line if no one held it."""
        if work.agent_id is None:
            self._line(work).discard(work.key)
            return []
        agent = self._agents[work.agent_id]
        self._release(agent, work)
        return [Unassigned(work.conversation_id, agent.spec.id, reason), *self._fill(agent, now)]

    def claim(self, agent_id: str, conversation_id: str, now: float) -> list[Decision]:
        """Manual pull: an agent takes a waiting conversation from a queue they serve."""
        agent = self._agent(agent_id)
        work = self._work.get(conversation_id)
        if work is None or work.agent_id is not None:
            raise InvalidCommand("the conversation is not waiting")
        if agent.presence is not Presence.ONLINE or work.served_by not in agent.spec.queues:
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
        out = self._let_go(work, "transferred", now)
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
            self._line(work).discard(work.key)
        work.queue_id = queue_id
        self._requirements_of(work, self.queues[queue_id])
        work.declined_by = None
        if source is not None:  # not straight back to whoever passed it on
            self._exclude(work, source.spec.id, now + self.queues[queue_id].decline_exclusion_s)
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
            self._line(work).discard(work.key)
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
        self._line(work).discard(work.key)
        out = [Escalated(conversation_id, work.queue_id, target, reason)]
        work.virtual_time -= ESCALATION_BOOST_S
        if target != work.queue_id:
            work.queue_id = target
            self._requirements_of(work, self.queues[target])
            work.declined_by = None
        return out + self._place(work, now)

    def settle(self, now: float) -> list[Decision]:
        """After a rebuild: waiting work that an online agent with room may take goes to them now (work restored
        from its facts never needs this; work that had none, or whose agent is gone, does)."""
        out: list[Decision] = []
        for agent_id in sorted(self._agents):
            out += self._fill(self._agents[agent_id], now)
        return out

    # -- time ----------------------------------------------------------------------------------------------------
    def due(self, now: float) -> bool:
        """Whether ``tick(now)`` has anything to do: a timer fell due or a queue opened or closed."""
        if self._timers and self._timers[0][0] <= now:
            return True
        return any(
            q.hours is not None and q.hours.is_open(ts(now)) != self._open.get(q.id, True) for q in self.queues.values()
        )

    def tick(self, now: float) -> list[Decision]:
        """Offer timeouts, overflow, sticky holds ending, queues opening: everything due by ``now``."""
        out: list[Decision] = []
        for queue in self.queues.values():
            if queue.hours is None:
                continue
            was, is_open = self._open.get(queue.id, True), queue.hours.is_open(ts(now))
            self._open[queue.id] = is_open
            if is_open and not was:
                for agent in list(self._agents.values()):
                    if queue.id in agent.spec.queues:
                        out += self._fill(agent, now)
        while self._timers and self._timers[0][0] <= now:
            due, _, kind, conversation_id = heapq.heappop(self._timers)
            work = self._work.get(conversation_id)
            if work is not None:
                out += self._timer_due(work, kind, due, now)
        return out

    def _timer_due(self, work: Work, kind: str, due: float, now: float) -> list[Decision]:
        """A timer acts only if it is the one the work's facts imply now (``due`` matches): a stale timer, left
        from an offer since declined or an exclusion since renewed, does nothing, so an engine restored from
        facts (which has only the current timers) fires the same ones in the same order."""
        if kind == "offer" and work.agent_id and work.offer_expires == due:
            return self._offer_missed(work, now)
        if kind == "exclusion" and work.declined_by and due in work.declined_by.values():
            work.declined_by = {a: until for a, until in work.declined_by.items() if until != due} or None
            self._touched_work.add(work.conversation_id)
            return self._replace(work, now) if work.agent_id is None else []  # whoever it excluded may take it
        overflow_to = self.queues[work.queue_id].overflow_to
        if kind == "overflow" and work.agent_id is None and not work.overflowed and overflow_to in self.queues:
            self._line(work).discard(work.key)
            return self._escalate(work, "waited_too_long") + self._place(work, now)
        if kind == "step":
            queue = self.queues[work.queue_id]
            nxt = work.step + 1
            if nxt < len(queue.steps) and work.enqueued_at + queue.steps[nxt].after_s == due:
                waiting = work.agent_id is None
                if waiting:
                    self._line(work).discard(work.key)  # its line is its requirements': leave it before they change
                self._enter(work, queue, nxt)  # widen: the next step's requirements replace these
                return self._place(work, now) if waiting else []
            return []
        if kind == "window" and work.not_before == due:
            work.not_before = 0.0  # the callback's window opened: routed like any call from now on
            self._touched_work.add(work.conversation_id)
            return self._replace(work, now) if work.agent_id is None else []
        if kind == "hold" and work.held_for is not None and work.reserved_until == due:
            work.stage += 1  # that preferred agent's hold is over: the next preference, or anyone
            work.held_for, work.reserved_until = None, 0.0
            self._touched_work.add(work.conversation_id)
            return self._replace(work, now) if work.agent_id is None else []
        return []

    def _replace(self, work: Work, now: float) -> list[Decision]:
        self._line(work).discard(work.key)
        return self._place(work, now)

    # -- views -----------------------------------------------------------------------------------------------------
    def can_take(self, agent_id: str, conversation_id: str, now: float) -> bool:
        """Whether this agent could be given this waiting work at ``now`` (for invariants and views)."""
        agent, work = self._agents[agent_id], self._work[conversation_id]
        queue = self.queues[work.queue_id]
        return (
            work.agent_id is None
            and agent.presence is Presence.ONLINE
            and work.served_by in agent.spec.queues
            and queue.strategy is not Strategy.MANUAL
            and self._is_open(queue, now)
            and agent.has_room(work.channel)
            and eligible(agent, work, now)
        )
