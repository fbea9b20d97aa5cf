"""What happened in a run, recorded as it happens: each conversation's arrival, queue, promise, answer,
abandonment and resolution; how long each waiting line grew in each hour; each agent's load over time. The
simulator tells it; ``report.py`` reads it."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from services.router.simulation.workload import HOUR, Arrival, Window

ANY = "*"  # a line key's wildcard: every queue, or every channel
Line = tuple[str, str]  # (queue, channel); either may be ANY


@dataclass(slots=True)
class Conversation:
    arrival: Arrival
    queue_id: str | None = None  # the queue it arrived in (results are counted there, wherever it went next)
    due_at: float = math.inf  # the first-response promise (domain/sla.py), in the queue's business hours
    answered_at: float | None = None  # first given to an agent for good (assigned, or an offer accepted)
    agent_id: str | None = None
    abandoned_at: float | None = None
    resolved_at: float | None = None
    escalations: int = 0
    line: Line | None = None  # the waiting line it is in now
    generation: int = 0  # bumped when it leaves its agent, so the resolve planned for that agent is stale

    @property
    def wait_s(self) -> float | None:
        return None if self.answered_at is None else self.answered_at - self.arrival.at


class Recorder:
    def __init__(self, window: Window, capacities: Mapping[str, float]) -> None:
        self.window = window
        self.conversations: dict[str, Conversation] = {}
        self.unrouted: list[str] = []  # no queue took them (no rule matched, no default queue)
        self.longest: dict[tuple[str, str, int], int] = defaultdict(int)  # (queue, channel, hour) → most waiting
        self._waiting: dict[Line, int] = defaultdict(int)
        self._dirty: set[Line] = set()
        self._hour = 0
        self.capacity = dict(capacities)
        self.busy = {a: [0.0] * window.hours for a in capacities}  # unit-seconds held, per hour
        self.available = {a: [0.0] * window.hours for a in capacities}  # capacity-seconds at work, per hour
        self._since = dict.fromkeys(capacities, window.start)
        self._units = dict.fromkeys(capacities, 0.0)
        self._at_work = dict.fromkeys(capacities, False)

    # -- conversations --------------------------------------------------------------------------------------
    def arrived(self, arrival: Arrival) -> Conversation:
        conversation = self.conversations[arrival.conversation_id] = Conversation(arrival)
        return conversation

    def queued(self, conversation: Conversation, queue_id: str) -> None:
        line = (queue_id, conversation.arrival.channel)
        if conversation.line != line:
            if conversation.line is not None:
                self._count(conversation.line, -1)
            self._count(line, 1)
            conversation.line = line

    def left_line(self, conversation: Conversation) -> None:
        if conversation.line is not None:
            self._count(conversation.line, -1)
            conversation.line = None

    def _count(self, line: Line, step: int) -> None:
        queue, channel = line
        for key in (line, (queue, ANY), (ANY, channel), (ANY, ANY)):
            self._waiting[key] += step
            self._dirty.add(key)

    def settle(self, now: float) -> None:
        """After each event: the lines' lengths as they stand once its decisions are all applied (work that is
        queued and given away in one decision never made anyone wait)."""
        hour = self.window.hour_of(now)
        if not self._dirty and hour == self._hour:
            return
        while self._hour < min(hour, self.window.hours):  # a new hour starts with the lines as they were
            self._hour += 1
            for key, count in self._waiting.items():
                if count and self._hour < self.window.hours:
                    slot = (key[0], key[1], self._hour)
                    self.longest[slot] = max(self.longest[slot], count)
        if 0 <= hour < self.window.hours:
            for key in self._dirty:
                slot = (key[0], key[1], hour)
                self.longest[slot] = max(self.longest[slot], self._waiting[key])
        self._dirty.clear()

    # -- agents ------------------------------------------------------------------------------------------------
    def agent(self, agent_id: str, now: float, units: float, at_work: bool) -> None:
        """The agent's load (in units) and whether they are at work (online, or away still holding work), from
        ``now`` on."""
        self._accumulate(agent_id, now)
        self._units[agent_id] = units
        self._at_work[agent_id] = at_work

    def close(self, now: float) -> None:
        for agent_id in self.capacity:
            self._accumulate(agent_id, now)

    def _accumulate(self, agent_id: str, now: float) -> None:
        start = self._since[agent_id]
        end = min(now, self.window.end)
        self._since[agent_id] = now
        units, at_work = self._units[agent_id], self._at_work[agent_id]
        if end <= start or not (units or at_work):
            return
        busy, available, capacity = self.busy[agent_id], self.available[agent_id], self.capacity[agent_id]
        while start < end:
            hour = self.window.hour_of(start)
            upto = min(end, self.window.start + (hour + 1) * HOUR)
            busy[hour] += units * (upto - start)
            if at_work:
                available[hour] += capacity * (upto - start)
            start = upto
