"""Synthetic traffic: Poisson arrivals per hour for each stream of conversations (a channel, a tier, a
language...), each with its handle-time and patience distributions. The rate may change every hour; within an
hour gaps are exponential, and since a Poisson process is memoryless, restarting at each hour is exact.

    {"start": "2026-01-05T00:00:00Z", "hours": 24,
     "streams": [{"channel": "chat", "tier": "gold", "language": "en", "tags": ["billing"],
                  "per_hour": [20, 10, 5, ...],  "handle": {"distribution": "lognormal", "mean_s": 420, "sd_s": 300},
                  "patience": {"mean_s": 600}}]}
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.router.simulation.distributions import Distribution, distribution
from services.router.simulation.workload import DEFAULT_START, HOUR, Arrival, Window, Workload, parse_time

ATTRS = ("tier", "language", "tags", "attributes", "skills", "urgency_s", "owner_agent_id")
STREAM_FIELDS = frozenset({"channel", "per_hour", "rate_per_hour", "handle", "patience", *ATTRS})


@dataclass(frozen=True)
class Stream:
    channel: str
    per_hour: Sequence[float]  # arrivals expected in each hour of the window, repeated if shorter
    handle: Distribution
    patience: Distribution | None
    attrs: Mapping[str, Any]

    def rate(self, hour: int) -> float:
        return float(self.per_hour[hour % len(self.per_hour)])


def streams_of(raw: Any) -> list[Stream]:
    """The ``streams`` of a traffic file; ``ValueError`` says which stream and what is wrong."""
    if not isinstance(raw, list) or not raw:
        raise ValueError("streams: a non-empty list of streams")
    out = []
    for n, item in enumerate(raw):
        where = f"streams[{n}]"
        if not isinstance(item, Mapping):
            raise ValueError(f"{where}: a stream is an object")
        unknown = set(item) - STREAM_FIELDS
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        if not isinstance(item.get("channel"), str) or not item["channel"]:
            raise ValueError(f'{where}.channel: required, e.g. "chat"')
        if ("per_hour" in item) == ("rate_per_hour" in item):
            raise ValueError(f"{where}: give either per_hour (a list) or rate_per_hour (a number)")
        per_hour = item["per_hour"] if "per_hour" in item else [item["rate_per_hour"]]
        if not isinstance(per_hour, list) or not per_hour or not all(_rate(r) for r in per_hour):
            raise ValueError(f"{where}: arrivals per hour are numbers of 0 or more")
        if "handle" not in item:
            raise ValueError(f'{where}.handle: required (e.g. {{"distribution": "exponential", "mean_s": 300}})')
        handle = distribution(item["handle"], f"{where}.handle")
        patience = distribution(item["patience"], f"{where}.patience") if item.get("patience") is not None else None
        attrs = {k: item[k] for k in ATTRS if item.get(k) is not None}
        out.append(Stream(item["channel"], [float(r) for r in per_hour], handle, patience, attrs))
    return out


def generate(streams: Sequence[Stream], window: Window, seed: int) -> Workload:
    """Poisson arrivals of every stream over the window, in time order, with their durations drawn once."""
    rnd = random.Random(seed)
    drawn: list[tuple[float, int, Stream]] = []
    for index, stream in enumerate(streams):
        for hour in range(window.hours):
            rate = stream.rate(hour)
            if rate <= 0:
                continue
            begin = window.start + hour * HOUR
            t = begin + rnd.expovariate(rate / HOUR)
            while t < begin + HOUR:
                drawn.append((t, index, stream))
                t += rnd.expovariate(rate / HOUR)
    drawn.sort(key=lambda item: (item[0], item[1]))
    arrivals = [
        Arrival(
            at=t,
            conversation_id=f"c{n}",
            channel=stream.channel,
            attrs=stream.attrs,
            handle_s=stream.handle.draw(rnd),
            patience_s=stream.patience.draw(rnd) if stream.patience is not None else None,
        )
        for n, (t, _, stream) in enumerate(drawn)
    ]
    return Workload(window, arrivals)


def _rate(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def traffic_of(raw: Any, *, start: float | None = None, hours: int | None = None, seed: int = 0) -> Workload:
    """A traffic file (``start``, ``hours``, ``streams``); ``start`` and ``hours`` given here win."""
    if not isinstance(raw, Mapping):
        raise ValueError("the traffic file is an object with streams")
    unknown = set(raw) - {"start", "hours", "streams"}
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
    if start is None:
        start = parse_time(str(raw.get("start", DEFAULT_START)), "start")
    if hours is None:
        hours = raw.get("hours", 24)
    if not isinstance(hours, int) or isinstance(hours, bool) or hours < 1:
        raise ValueError("hours: a whole number of 1 or more")
    return generate(streams_of(raw.get("streams")), Window(start, hours), seed)
