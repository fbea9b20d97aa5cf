"""Staffing: the fewest agents per hour that answer ``level`` of conversations within ``within_s`` (e.g. 80%
within 20 s), found by simulation, with Erlang C's answer beside it as a cross-check.

Erlang C assumes one conversation at a time, nobody abandoning and no routing rules; the simulation runs the
desk as configured, so the two differ where the desk does (concurrent chats need fewer agents than Erlang C
says, impatient customers fewer still). Hours are coupled (a backlog carries over), so the search is done on
whole-day runs: it starts from Erlang C, adds an agent to every hour that falls short until none does, then
lowers each hour as far as every hour still meets the level (bisection), keeping the traffic and seed fixed so
that runs differ only by the staffing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

from services.router.domain.routing.engine import RoutingEngine
from services.router.simulation.desk import AgentGroup, Desk
from services.router.simulation.erlang import agents_needed, service_level
from services.router.simulation.simulator import Run, simulate
from services.router.simulation.workload import Workload

MAX_RUNS = 400


class StaffingError(RuntimeError):
    pass


@dataclass(frozen=True)
class Staffing:
    level: float
    within_s: float
    group: str
    runs: int
    hours: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "within_s": self.within_s,
            "group": self.group,
            "runs": self.runs,
            "agent_hours": {
                "simulated": sum(h["agents_simulated"] for h in self.hours),
                "erlang_c": sum(h["agents_erlang_c"] for h in self.hours),
            },
            "hours": self.hours,
        }


def served_by(desk: Desk, group: AgentGroup, workload: Workload) -> set[str]:
    """The conversations that arrive in a queue the group serves: chosen by the desk's queue rules exactly as
    ``arrive`` chooses (``select_queue`` on the channel and the customer's attributes), which staffing does not
    change."""
    engine = RoutingEngine()
    for queue in desk.queues:
        engine.upsert_queue(queue)
    served = set()
    for a in workload.arrivals:
        chosen = engine.select_queue({**a.attrs, "channel": a.channel})
        if chosen is not None and chosen.id in group.spec.queues:
            served.add(a.conversation_id)
    return served


def service_levels(run: Run, within_s: float, only: Collection[str] | None = None) -> list[float | None]:
    """Per arrival hour: answered within ``within_s`` ÷ every conversation that arrived (abandoned and still
    waiting ones miss), of ``only`` these conversations if given; None for an hour nothing arrived in."""
    met, seen = [0] * run.window.hours, [0] * run.window.hours
    for c in run.recorded.conversations.values():
        if only is not None and c.arrival.conversation_id not in only:
            continue
        hour = run.window.hour_of(c.arrival.at)
        seen[hour] += 1
        met[hour] += c.answered_at is not None and c.answered_at - c.arrival.at <= within_s
    return [m / s if s else None for m, s in zip(met, seen, strict=True)]


def erlang_hours(
    workload: Workload, within_s: float, level: float, only: Collection[str]
) -> list[tuple[int, float, float, int]]:
    """Per hour, of ``only`` these conversations: arrivals, offered load (erlangs), mean handle time, and the
    agents Erlang C asks for."""
    hours = workload.window.hours
    count, handle = [0] * hours, [0.0] * hours
    for a in workload.arrivals:
        if a.conversation_id not in only:
            continue
        hour = workload.window.hour_of(a.at)
        if 0 <= hour < hours:
            count[hour] += 1
            handle[hour] += a.handle_s
    out = []
    for n, total in zip(count, handle, strict=True):
        mean = total / n if n else 0.0
        load = total / 3600.0
        out.append((n, load, mean, agents_needed(load, mean, within_s, level) if n else 0))
    return out


def search(
    desk: Desk,
    workload: Workload,
    *,
    level: float,
    within_s: float,
    group_id: str | None = None,
    seed: int = 0,
    tick_s: float = 1.0,
    on_run: Callable[[int], None] | None = None,
) -> Staffing:
    group = desk.group(group_id)
    served = served_by(desk, group, workload)
    if not served:
        raise StaffingError(f"no conversation arrives in a queue the agents {group.id!r} serve")
    erlang = erlang_hours(workload, within_s, level, served)
    runs = 0

    def levels(counts: Sequence[int]) -> list[float | None]:
        nonlocal runs
        runs += 1
        if runs > MAX_RUNS:
            short = [workload.window.label(h) for h, x in enumerate(got) if x is not None and x < level]
            raise StaffingError(f"no staffing found within {MAX_RUNS} runs; still short at {', '.join(short[:6])}")
        if on_run is not None:
            on_run(runs)
        staffed = replace(group, per_hour=tuple(counts), count=max(1, *counts), shifts=None)
        run = simulate(desk.with_group(staffed), workload, seed=seed, tick_s=tick_s)
        return service_levels(run, within_s, served)

    def meets(got: Sequence[float | None]) -> bool:
        return all(x is None or x >= level for x in got)

    counts = [e[3] for e in erlang]
    got: list[float | None] = [None] * len(counts)
    got = levels(counts)
    while not meets(got):
        for hour, x in enumerate(got):
            if x is not None and x < level:
                counts[hour] += 1 if counts[hour] else max(1, math.ceil(erlang[hour][1]))
        got = levels(counts)
    for hour in sorted(range(len(counts)), key=lambda h: -counts[h]):
        low, high = 0, counts[hour]  # ``high`` meets the level; find the least that does
        while low < high:
            middle = (low + high) // 2
            trial = [*counts[:hour], middle, *counts[hour + 1 :]]
            trial_got = levels(trial)
            if meets(trial_got):
                high, got = middle, trial_got
            else:
                low = middle + 1
        counts[hour] = high
    return Staffing(level, within_s, group.id, runs, _rows(workload, erlang, counts, got, within_s))


def _rows(
    workload: Workload,
    erlang: Sequence[tuple[int, float, float, int]],
    counts: Sequence[int],
    got: Sequence[float | None],
    within_s: float,
) -> list[dict[str, Any]]:
    rows = []
    for hour, ((arrivals, load, handle, needed), agents, simulated) in enumerate(zip(erlang, counts, got, strict=True)):
        rows.append(
            {
                "hour": hour,
                "at": workload.window.label(hour),
                "arrivals": arrivals,
                "load_erlangs": round(load, 3),
                "agents_simulated": agents,
                "service_level_simulated": None if simulated is None else round(simulated, 4),
                "agents_erlang_c": needed,
                "service_level_erlang_c": round(service_level(needed, load, handle, within_s), 4) if arrivals else None,
            }
        )
    return rows
