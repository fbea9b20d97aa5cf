"""Memory and open files of the processes under test, sampled while traffic and faults run, and whether they
grow: the soak's question (``make soak``). Each process is sampled by name (``router-a``, ``kafka``, ...);
a fault that kills it starts a new incarnation (a new pid), whose numbers start afresh, so the growth of a
process is read from its longest-lived incarnation: the slope of a least-squares line through its samples,
per hour, and what that slope adds over the incarnation's life as a share of its mean."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sample:
    at_s: float  # since sampling started
    name: str
    pid: int
    rss_kb: int
    fds: int


def read(pid: int) -> tuple[int, int] | None:
    """(resident set in KiB, open file descriptors) of a live process; None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            rss = next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0)
        return rss, len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 for fewer than two distinct x)."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / sxx


@dataclass
class ResourceSampler:
    every_s: float = 10.0
    samples: list[Sample] = field(default_factory=list)

    async def run(self, pids: Callable[[], Mapping[str, int | None]], stop: asyncio.Event) -> None:
        """Sample every process ``pids()`` names, every ``every_s``, until ``stop``."""
        started = time.monotonic()
        while not stop.is_set():
            at = time.monotonic() - started
            for name, pid in pids().items():
                got = read(pid) if pid else None
                if pid and got is not None:
                    self.samples.append(Sample(round(at, 1), name, pid, *got))
            try:
                await asyncio.wait_for(stop.wait(), self.every_s)
            except TimeoutError:
                pass

    def growth(self) -> dict[str, dict[str, Any]]:
        """Per process: its longest-lived incarnation's span, samples, mean and slope per hour of memory (MiB)
        and open files, and the share of the mean that slope adds over the span (``*_growth``)."""
        out: dict[str, dict[str, Any]] = {}
        for name in sorted({s.name for s in self.samples}):
            lives: dict[int, list[Sample]] = {}
            for s in self.samples:
                if s.name == name:
                    lives.setdefault(s.pid, []).append(s)
            life = max(lives.values(), key=lambda ss: (ss[-1].at_s - ss[0].at_s, len(ss)))
            span_h = (life[-1].at_s - life[0].at_s) / 3600
            figures: dict[str, Any] = {"incarnations": len(lives), "samples": len(life), "span_s": round(span_h * 3600)}
            for key, of in (("rss_mib", lambda s: s.rss_kb / 1024), ("fds", lambda s: float(s.fds))):
                points = [(s.at_s / 3600, of(s)) for s in life]
                mean = sum(y for _, y in points) / len(points)
                per_h = slope(points)
                figures[f"{key}_mean"] = round(mean, 1)
                figures[f"{key}_per_hour"] = round(per_h, 2)
                figures[f"{key}_growth"] = round(per_h * span_h / mean, 4) if mean else 0.0
            out[name] = figures
        return out


def grew(growth: Mapping[str, Mapping[str, Any]], limit: float) -> dict[str, list[str]]:
    """The processes whose memory or open files grew by more than ``limit`` (a share of the mean) over their
    longest life, and which."""
    out: dict[str, list[str]] = {}
    for name, figures in growth.items():
        over = [key for key in ("rss_mib", "fds") if figures[f"{key}_growth"] > limit]
        if over:
            out[name] = over
    return out
