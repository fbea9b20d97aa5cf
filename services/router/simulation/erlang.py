"""Erlang C: the textbook M/M/N queue (Poisson arrivals, exponential handle times, N agents taking one
conversation at a time, nobody abandons), the staffing search's cross-check.

Computed through the Erlang B recursion B(0) = 1, B(k) = A·B(k-1) / (k + A·B(k-1)), which stays between 0 and
1 at every step, instead of A^N/N! sums that overflow floats for a few hundred agents; then
C = N·B / (N - A·(1 - B)).
"""

from __future__ import annotations

import math


def erlang_b(agents: int, load: float) -> float:
    """Probability that all ``agents`` are busy in a loss system offered ``load`` erlangs."""
    b = 1.0
    for k in range(1, agents + 1):
        b = load * b / (k + load * b)
    return b


def erlang_c(agents: int, load: float) -> float:
    """Probability that a conversation waits (``load`` = arrival rate times mean handle time, in erlangs)."""
    if agents <= 0 or load >= agents:
        return 1.0
    if load <= 0:
        return 0.0
    b = erlang_b(agents, load)
    return agents * b / (agents - load * (1 - b))


def service_level(agents: int, load: float, handle_s: float, within_s: float) -> float:
    """Share of conversations answered within ``within_s``: 1 - C·exp(-(N - A)·T / handle time)."""
    if agents <= 0 or load >= agents:
        return 0.0 if load > 0 else 1.0
    return 1.0 - erlang_c(agents, load) * math.exp(-(agents - load) * within_s / handle_s)


def agents_needed(load: float, handle_s: float, within_s: float, level: float) -> int:
    """The fewest agents whose service level reaches ``level`` (0 when nothing arrives)."""
    if load <= 0:
        return 0
    agents = max(1, math.floor(load) + 1)  # fewer cannot keep up at all
    while service_level(agents, load, handle_s, within_s) < level:
        agents += 1
    return agents
