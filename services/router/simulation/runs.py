"""A whole simulation as one JSON value, the body of ``POST /v1/simulations``: the desk, a proposal, and the
traffic or a trace, as ``switchboard simulate`` takes them from files (docs/simulation.md).

    {"desk": {...}, "proposal": {...}, "traffic": {...}, "seed": 1, "drain_h": 2}
    {"desk": {...}, "trace": [{"at": "2026-01-05T08:00:03Z", "channel": "chat", "handle_s": 240}, ...],
     "handle": {"distribution": "lognormal", "mean_s": 420, "sd_s": 300}}

``check`` is cheap and runs where the request is received, so a bad desk is refused at once; ``run`` does the
work and is meant for another process. Both take and return plain JSON values, which cross a process boundary
as they are. The limits keep one request from holding a worker (or its memory) for long: a week's window, and
twice the traffic of the benchmark's day (tests/bench/bench_simulation.py: 100,000 conversations, 500 agents).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from services.router.domain.errors import InvalidCommand
from services.router.simulation.comparison import compare
from services.router.simulation.desk import Desk, desk_of
from services.router.simulation.distributions import distribution
from services.router.simulation.report import report
from services.router.simulation.simulator import simulate
from services.router.simulation.trace import read_trace
from services.router.simulation.traffic import streams_of, traffic_of
from services.router.simulation.workload import HOUR, Workload, parse_time

FIELDS = frozenset({"desk", "proposal", "traffic", "trace", "handle", "patience", "seed", "drain_h"})
MAX_HOURS = 7 * 24
MAX_ARRIVALS = 200_000  # expected arrivals of synthetic traffic, or lines of a trace
MAX_AGENTS = 2_000
T = TypeVar("T")


class SimulationRefused(ValueError):
    """The body cannot be simulated; the message names the field (``desk.queues[0].routing``)."""


def check(body: Any) -> None:
    """Refuses what could not run, naming the field: the desks as the simulator reads them, the traffic's
    streams and size, the options. A trace's lines are checked by ``run`` (they can be many)."""
    if not isinstance(body, Mapping):
        raise SimulationRefused("the body is an object with desk, and traffic or trace")
    unknown = set(body) - FIELDS
    if unknown:
        raise SimulationRefused(f"unknown field(s) {', '.join(sorted(unknown))}")
    for name in ("desk", "proposal"):
        if name == "desk" or body.get(name) is not None:
            _agents(_desk(body.get(name), name), name)
    if ("traffic" in body) == ("trace" in body):
        raise SimulationRefused("give either traffic (synthetic) or trace (a list of trace lines)")
    if "traffic" in body:
        _traffic(body["traffic"])
    elif not isinstance(body["trace"], list) or not body["trace"]:
        raise SimulationRefused("trace: a non-empty list of trace lines (objects)")
    elif len(body["trace"]) > MAX_ARRIVALS:
        raise SimulationRefused(f"trace: at most {MAX_ARRIVALS:,} lines")
    for name in ("handle", "patience"):
        if body.get(name) is not None:
            _refused("", distribution, body[name], name)
    seed, drain_h = body.get("seed", 1), body.get("drain_h", 2)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise SimulationRefused("seed: a whole number")
    if not isinstance(drain_h, (int, float)) or isinstance(drain_h, bool) or not 0 <= drain_h <= 48:
        raise SimulationRefused("drain_h: hours from 0 to 48")


def run(body: Mapping[str, Any]) -> dict[str, Any]:
    """The results, as ``report.json`` of ``switchboard simulate``: ``baseline``, and with a proposal
    ``proposal`` and ``comparison``. ``SimulationRefused`` if the trace cannot be used."""
    check(body)
    seed = int(body.get("seed", 1))
    desks: dict[str, Desk] = {"baseline": desk_of(body["desk"])}
    if body.get("proposal") is not None:
        desks["proposal"] = desk_of(body["proposal"])
    workload = _workload(body, seed)
    drain_s = float(body.get("drain_h", 2)) * HOUR
    workload = Workload(replace(workload.window, drain_s=drain_s), workload.arrivals, workload.presence)
    results: dict[str, Any] = {name: report(simulate(desk, workload, seed=seed)) for name, desk in desks.items()}
    if "proposal" in results:
        results["comparison"] = compare(results["baseline"], results["proposal"])
    return results


def _workload(body: Mapping[str, Any], seed: int) -> Workload:
    if "traffic" in body:
        return traffic_of(body["traffic"], seed=seed)
    lines = [json.dumps(line) for line in body["trace"]]
    handle = distribution(body["handle"], "handle") if body.get("handle") is not None else None
    patience = distribution(body["patience"], "patience") if body.get("patience") is not None else None
    try:
        workload = read_trace(lines, name="trace", handle=handle, patience=patience, seed=seed)
    except ValueError as exc:
        raise SimulationRefused(str(exc)) from None
    if workload.window.hours > MAX_HOURS:
        raise SimulationRefused(f"trace: its lines span more than {MAX_HOURS} hours")
    return workload


def _desk(raw: Any, name: str) -> Desk:
    try:
        return desk_of(raw)
    except (ValueError, InvalidCommand) as exc:
        raise SimulationRefused(f"{name}: {exc}") from None


def _agents(desk: Desk, name: str) -> None:
    if sum(group.count for group in desk.agents) > MAX_AGENTS:
        raise SimulationRefused(f"{name}.agents: at most {MAX_AGENTS:,} agents in all")


def _traffic(raw: Any) -> None:
    if not isinstance(raw, Mapping):
        raise SimulationRefused("traffic: an object with streams")
    unknown = set(raw) - {"start", "hours", "streams"}
    if unknown:
        raise SimulationRefused(f"traffic: unknown field(s) {', '.join(sorted(unknown))}")
    hours = raw.get("hours", 24)
    if not isinstance(hours, int) or isinstance(hours, bool) or not 1 <= hours <= MAX_HOURS:
        raise SimulationRefused(f"traffic.hours: a whole number from 1 to {MAX_HOURS}")
    streams = _refused("traffic", streams_of, raw.get("streams"))
    expected = sum(stream.rate(hour) for stream in streams for hour in range(hours))
    if expected > MAX_ARRIVALS:
        raise SimulationRefused(f"traffic: about {expected:,.0f} conversations; at most {MAX_ARRIVALS:,}")
    if "start" in raw:
        _refused("traffic", parse_time, str(raw["start"]), "start")


def _refused(where: str, make: Callable[..., T], *args: Any) -> T:
    try:
        return make(*args)
    except ValueError as exc:
        raise SimulationRefused(f"{where}: {exc}" if where else str(exc)) from None
