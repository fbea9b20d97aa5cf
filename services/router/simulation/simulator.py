"""The discrete-event driver: the production ``RoutingEngine`` on a simulated clock.

Nothing of routing is re-implemented here. Every step is an engine command called the way the router calls it
(``handlers/ingest.py``, ``handlers/agent_commands.py``): a conversation arrives (``arrive``), an agent accepts
or declines an offer, resolves after the handle time (``resolve``), a customer gives up (``resolve`` of waiting
work, as an abandoned call does), an agent's shift starts or ends (``set_presence``), an SLA warning or breach
escalates (``escalate``, with the queue's ``sla.on_warning`` / ``on_breach`` actions). Like ``route()`` in
``handlers/routing_owner.py``, each command runs after ``tick(now)``; and like ``RoutingTimers.tick``, the
engine's own timers (offer timeouts, overflow, widening steps, holds, opening hours) are polled every
``tick_s`` with ``due``/``tick``. What the engine decides drives the next events: an offer is answered after
the agent's reaction time, an assignment is resolved after the conversation's handle time.

A shift's end sets the agent away (their open offers go to others, what they hold stays theirs) and offline
once they have finished it, so nobody's conversation is handed back at the end of a shift.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from services.router.domain.errors import InvalidCommand
from services.router.domain.model import Presence
from services.router.domain.routing.decisions import (
    Assigned,
    Decision,
    Escalated,
    Offered,
    PresenceChanged,
    Queued,
    Unassigned,
)
from services.router.domain.routing.engine import RoutingEngine
from services.router.domain.routing.placement import ts
from services.router.domain.routing.specs import AgentSpec
from services.router.domain.sla import TimerKind, actions, deadlines, target_s
from services.router.simulation.desk import Desk
from services.router.simulation.outcomes import Conversation, Recorder
from services.router.simulation.workload import Window, Workload

# what an agenda entry is about (the order of equal-time entries is the order they were planned in)
RESOLVE, RESPOND, ABANDON, START, FINISH, BACK, SLA, PRESENCE = range(8)
ROUTER_TICK_S = 1.0  # SWITCHBOARD_ROUTING_TICK_S's default (shared/settings.py)
SLA_WARNING_FRACTION = 0.8  # SWITCHBOARD_SLA_WARNING_FRACTION's default
PROGRESS_EVERY = 4096  # events between progress reports

Progress = Callable[[float], None]  # the share of simulated time done, 0 to 1


@dataclass(frozen=True)
class Run:
    """A finished run: what the recorder saw, over the window."""

    window: Window
    recorded: Recorder
    events: int


def capacity_units(spec: AgentSpec) -> float:
    """What an agent holds when full, in the units ``agent_units`` counts: the profile's capacity, or (no
    profile: one unit a conversation) the default per-channel count."""
    if spec.profile is not None:
        return spec.profile.capacity
    return float(spec.capacity.get("default", max(spec.capacity.values(), default=1)) or 1)


def simulate(
    desk: Desk,
    workload: Workload,
    *,
    seed: int = 0,
    tick_s: float = ROUTER_TICK_S,
    warning_fraction: float = SLA_WARNING_FRACTION,
    progress: Progress | None = None,
) -> Run:
    return Simulator(desk, workload, seed=seed, tick_s=tick_s, warning_fraction=warning_fraction).run(progress)


class Simulator:
    def __init__(
        self,
        desk: Desk,
        workload: Workload,
        *,
        seed: int = 0,
        tick_s: float = ROUTER_TICK_S,
        warning_fraction: float = SLA_WARNING_FRACTION,
    ) -> None:
        self.desk = desk
        self.workload = workload
        self.window = window = workload.window
        self.tick_s = tick_s
        self.warning_fraction = warning_fraction
        self.behaviour = desk.behaviour
        self.rnd = random.Random(seed)  # agents' answers to offers (traffic was drawn before, with its own seed)
        self.engine = engine = RoutingEngine()
        self._agenda: list[tuple[float, int, int, str, Any]] = []
        self._planned = itertools.count()
        for queue in desk.queues:
            engine.upsert_queue(queue)
        capacities: dict[str, float] = {}
        self._on_shift: dict[str, bool] = {}
        traced = {change.agent_id for change in workload.presence}  # they follow the trace, not their shifts
        for group in desk.agents:
            for index, spec in enumerate(group.specs()):
                engine.upsert_agent(spec)
                capacities[spec.id] = capacity_units(spec)
                self._on_shift[spec.id] = False
                if spec.id in traced:
                    continue
                spans = group.at_work(index, window)
                if spans is None:
                    self._plan(window.start, PRESENCE, spec.id, group.presence)
                for begin, end in spans or ():
                    self._plan(begin, START, spec.id)
                    if end < window.stop:
                        self._plan(end, FINISH, spec.id)
        unknown = sorted({c.agent_id for c in workload.presence} - capacities.keys())
        if unknown:
            raise InvalidCommand(f"the trace changes the presence of agents the desk does not have: {unknown[:5]}")
        for change in workload.presence:
            self._plan(change.at, PRESENCE, change.agent_id, change.presence)
        self.recorded = Recorder(window, capacities)

    def _plan(self, at: float, kind: int, subject: str, detail: Any = None) -> None:
        heapq.heappush(self._agenda, (at, next(self._planned), kind, subject, detail))

    # -- the clock ----------------------------------------------------------------------------------------------
    def run(self, progress: Progress | None = None) -> Run:
        engine, agenda, window = self.engine, self._agenda, self.window
        arrivals = self.workload.arrivals
        count, i, ticks, events = len(arrivals), 0, 1, 0
        stop, span = window.stop, window.stop - window.start
        next_tick = window.start + self.tick_s
        while True:
            t_arrival = arrivals[i].at if i < count else math.inf
            t_event = agenda[0][0] if agenda else math.inf
            t = min(t_arrival, t_event)
            if next_tick <= t:  # the router's timer loop runs on its own clock, ahead of what happens at that time
                if next_tick > stop:
                    break
                if engine.due(next_tick):
                    self._apply(engine.tick(next_tick), next_tick)
                    self.recorded.settle(next_tick)
                ticks += 1
                next_tick = window.start + ticks * self.tick_s
                continue
            if t > stop:
                break
            if t_event <= t_arrival:
                _, _, kind, subject, detail = heapq.heappop(agenda)
                self._event(kind, subject, detail, t)
            else:
                self._arrive(i, t)
                i += 1
            self.recorded.settle(t)
            events += 1
            if progress is not None and events % PROGRESS_EVERY == 0:
                progress((t - window.start) / span)
        self.recorded.close(stop)
        if progress is not None:
            progress(1.0)
        return Run(window, self.recorded, events)

    def _command(self, decide: Callable[[], list[Decision]], now: float) -> None:
        """One routing pass as ``route()`` makes it: the timers due by now first, then the command."""
        self._apply(self.engine.tick(now), now)
        self._apply(decide(), now)

    # -- what happens ---------------------------------------------------------------------------------------------
    def _arrive(self, index: int, now: float) -> None:
        arrival = self.workload.arrivals[index]
        conversation = self.recorded.arrived(arrival)
        self._apply(self.engine.tick(now), now)
        try:
            decisions = self.engine.arrive(
                arrival.conversation_id, arrival.channel, arrival.attrs, now, previous_agent=arrival.previous_agent
            )
        except InvalidCommand:  # no queue takes it: the router would leave it unrouted too
            self.recorded.unrouted.append(arrival.conversation_id)
            return
        if arrival.patience_s is not None:
            self._plan(now + arrival.patience_s, ABANDON, arrival.conversation_id)
        self._start_clock(conversation, decisions)
        self._apply(decisions, now)

    def _start_clock(self, conversation: Conversation, decisions: Iterable[Decision]) -> None:
        """The first-response promise, from the queue the conversation arrived in (``SlaClock.opened``), and
        the warning and breach that act on it if that queue's SLA says to."""
        queue_id = next((d.queue_id for d in decisions if isinstance(d, Queued)), None)
        if queue_id is None:
            return
        queue = self.engine.queues[queue_id]
        arrival = conversation.arrival
        conversation.queue_id = queue_id
        seconds = target_s(TimerKind.FIRST_RESPONSE, arrival.channel, arrival.tier, queue.sla)
        if queue.hours is None:  # wall time: what ``deadlines`` computes, without its datetimes (the hot path)
            warn_at, due_at = arrival.at + seconds * self.warning_fraction, arrival.at + seconds
        else:
            due = deadlines(ts(arrival.at), seconds, self.warning_fraction, queue.hours)
            warn_at, due_at = due.warn_at.timestamp(), due.due_at.timestamp()
        conversation.due_at = due_at
        if not queue.sla:
            return
        for stage, at in (("warning", warn_at), ("breach", due_at)):
            act = actions(queue.sla, stage)
            if act.get("raise_priority") or act.get("escalate_to"):
                self._plan(at, SLA, arrival.conversation_id, act.get("escalate_to"))

    def _event(self, kind: int, subject: str, detail: Any, now: float) -> None:
        engine = self.engine
        if kind == RESOLVE:
            conversation = self.recorded.conversations[subject]
            if conversation.generation == detail and engine.work(subject) is not None:
                conversation.resolved_at = now
                self._command(lambda: engine.resolve(subject, now), now)
        elif kind == RESPOND:
            self._respond(subject, detail, now)
        elif kind == ABANDON:
            conversation = self.recorded.conversations[subject]
            if conversation.answered_at is None and engine.work(subject) is not None:
                conversation.abandoned_at = now
                self.recorded.left_line(conversation)
                self._command(lambda: engine.resolve(subject, now), now)  # as the router's ``_leave``
        elif kind == START:
            self._on_shift[subject] = True
            if engine.presence(subject) is not Presence.ONLINE:
                self._command(lambda: engine.set_presence(subject, Presence.ONLINE, now), now)
        elif kind == FINISH:
            self._on_shift[subject] = False
            going = Presence.AWAY if engine.agent_work(subject) else Presence.OFFLINE
            self._command(lambda: engine.set_presence(subject, going, now), now)
        elif kind == BACK:
            if self._on_shift[subject] and engine.presence(subject) is Presence.AWAY:
                self._command(lambda: engine.set_presence(subject, Presence.ONLINE, now), now)
        elif kind == SLA:
            conversation = self.recorded.conversations[subject]
            if conversation.answered_at is None and engine.work(subject) is not None:
                self._command(lambda: engine.escalate(subject, detail, now), now)
        elif kind == PRESENCE:
            self._on_shift[subject] = detail is Presence.ONLINE
            self._command(lambda: engine.set_presence(subject, detail, now), now)

    def _respond(self, conversation_id: str, offer: tuple[str, float], now: float) -> None:
        """The agent answers an offer after their reaction time, if it is still theirs and still open."""
        engine, behaviour = self.engine, self.behaviour
        agent_id, expires = offer
        draw = self.rnd.random()
        self._apply(engine.tick(now), now)  # an offer that ran out at this very moment is gone first
        work = engine.work(conversation_id)
        if work is None or work.agent_id != agent_id or work.offer_expires != expires:
            return
        if draw < behaviour.decline_rate:
            self._apply(engine.decline(agent_id, conversation_id, now), now)
        elif draw >= behaviour.decline_rate + behaviour.miss_rate:
            self._apply(engine.accept(agent_id, conversation_id, now), now)
        # else: the agent lets it run out; the engine's offer timer acts on it

    def _apply(self, decisions: list[Decision], now: float) -> None:
        """Turn what the engine decided into what happens next: answers to offers, resolutions after the handle
        time, agents leaving once their shift's work is done. Records lines and loads as they change."""
        if not decisions:
            return
        engine, recorded, conversations = self.engine, self.recorded, self.recorded.conversations
        touched: set[str] = set()
        k = 0
        while k < len(decisions):  # grows when an agent whose shift ended hands in their last conversation
            d = decisions[k]
            k += 1
            if isinstance(d, Queued):
                recorded.queued(conversations[d.conversation_id], d.queue_id)
            elif isinstance(d, Assigned):
                conversation = conversations[d.conversation_id]
                recorded.left_line(conversation)
                if conversation.answered_at is None:
                    conversation.answered_at = now
                    conversation.agent_id = d.agent_id
                conversation.generation += 1
                self._plan(now + conversation.arrival.handle_s, RESOLVE, d.conversation_id, conversation.generation)
                touched.add(d.agent_id)
            elif isinstance(d, Offered):
                recorded.left_line(conversations[d.conversation_id])
                when = now + self.behaviour.accept_after_s
                self._plan(when, RESPOND, d.conversation_id, (d.agent_id, d.expires_at))
                touched.add(d.agent_id)
            elif isinstance(d, Unassigned):
                if d.reason != "resolved":
                    conversations[d.conversation_id].generation += 1
                touched.add(d.agent_id)
                agent = d.agent_id
                if (
                    not self._on_shift[agent]
                    and engine.presence(agent) is Presence.AWAY
                    and not engine.agent_work(agent)
                ):
                    decisions.extend(engine.set_presence(agent, Presence.OFFLINE, now))
            elif isinstance(d, PresenceChanged):
                touched.add(d.agent_id)
                if d.reason == "missed_offer" and self._on_shift[d.agent_id]:
                    self._plan(now + self.behaviour.back_after_missed_s, BACK, d.agent_id)
            elif isinstance(d, Escalated):
                conversations[d.conversation_id].escalations += 1
        for agent in touched:
            units = engine.agent_units(agent)
            recorded.agent(agent, now, units, units > 0 or engine.presence(agent) is Presence.ONLINE)
