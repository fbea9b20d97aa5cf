"""A run summarised per queue, channel and hour (and every combination of them): SLA attainment, waits,
abandonment, the longest line and agents' occupancy. Conversations count in the queue they arrived in and the
hour they arrived in, so a change that moves work elsewhere shows where it came from.

Definitions (docs/simulation.md says the same):
- wait: arrival → first given to an agent for good (an assignment, or an offer accepted);
- SLA attainment: answered by the first-response promise ÷ conversations whose outcome is known by the end
  of the run (answered, abandoned, or still waiting past their promise); abandoned ones count as missed;
- occupancy: units held ÷ capacity, over the time agents were at work (online, or away still holding work).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from services.router.simulation.outcomes import ANY, Conversation
from services.router.simulation.simulator import Run

Metrics = dict[str, Any]
PERCENTILES = ((50, "wait_p50_s"), (90, "wait_p90_s"), (99, "wait_p99_s"))


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """Nearest rank (the smallest value with at least p% of values at or below it)."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def metrics(conversations: Iterable[Conversation], stop: float) -> Metrics:
    arrived = answered = abandoned = met = counted = waited = 0
    waits: list[float] = []
    for c in conversations:
        arrived += 1
        if c.answered_at is not None:
            answered += 1
            wait = c.answered_at - c.arrival.at
            waits.append(wait)
            waited += wait > 0
            counted += 1
            met += c.answered_at <= c.due_at
        elif c.abandoned_at is not None:
            abandoned += 1
            counted += 1
        elif c.due_at <= stop:
            counted += 1
    waits.sort()
    out: Metrics = {
        "arrived": arrived,
        "answered": answered,
        "abandoned": abandoned,
        "unanswered": arrived - answered - abandoned,
        "sla_attainment": _ratio(met, counted),
        "abandonment_rate": _ratio(abandoned, arrived),
        "waited_share": _ratio(waited, answered),
        "wait_mean_s": _round(sum(waits) / len(waits)) if waits else None,
    }
    for p, key in PERCENTILES:
        out[key] = _round(percentile(waits, p))
    return out


def report(run: Run) -> dict[str, Any]:
    window, recorded = run.window, run.recorded
    groups: dict[tuple[str, str, int], list[Conversation]] = defaultdict(list)
    for c in recorded.conversations.values():
        if c.queue_id is None:
            continue
        hour = window.hour_of(c.arrival.at)
        for queue in (c.queue_id, ANY):
            for channel in (c.arrival.channel, ANY):
                groups[(queue, channel, hour)].append(c)
                groups[(queue, channel, -1)].append(c)  # -1: the whole window

    def summary(queue: str, channel: str, hour: int) -> Metrics:
        out = metrics(groups.get((queue, channel, hour), ()), window.stop)
        hours = range(window.hours) if hour == -1 else (hour,)
        out["longest_queue"] = max((recorded.longest.get((queue, channel, h), 0) for h in hours), default=0)
        return out

    busy = [sum(b[h] for b in recorded.busy.values()) for h in range(window.hours)]
    available = [sum(a[h] for a in recorded.available.values()) for h in range(window.hours)]
    queues = sorted({k[0] for k in groups if k[0] != ANY})
    channels = sorted({k[1] for k in groups if k[1] != ANY})
    return {
        "window": {"start": window.label(0), "hours": window.hours, "drain_s": window.drain_s},
        "events": run.events,
        "unrouted": len(recorded.unrouted),
        "total": summary(ANY, ANY, -1) | {"occupancy": _ratio(sum(busy), sum(available))},
        "queues": {q: summary(q, ANY, -1) for q in queues},
        "channels": {ch: summary(ANY, ch, -1) for ch in channels},
        "hours": [
            {"hour": h, "at": window.label(h)} | summary(ANY, ANY, h) | {"occupancy": _ratio(busy[h], available[h])}
            for h in range(window.hours)
        ],
        "queue_hours": {q: [{"hour": h} | summary(q, ANY, h) for h in range(window.hours)] for q in queues},
        "rows": [
            {"queue": q, "channel": ch, "hour": h} | summary(q, ch, h)
            for q in queues
            for ch in channels
            for h in range(window.hours)
            if (q, ch, h) in groups
        ],
        "agents": {
            agent: {
                "occupancy": _ratio(sum(recorded.busy[agent]), sum(recorded.available[agent])),
                "at_work_h": _round(sum(recorded.available[agent]) / recorded.capacity[agent] / 3600),
            }
            for agent in sorted(recorded.capacity)
        },
    }


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
