"""What an agent may hold at once: a routing profile (Amazon Connect's cross-channel concurrency, TaskRouter's
multitasking). A profile gives a total capacity in units, a weight per channel (a chat costs 1, an email 0.5),
a maximum per channel, and exclusive channels: while an agent holds one (a call), nothing else fits, and it
needs them free of everything else. Profiles are named and shared by agents; an agent without one keeps the
older per-channel counts (``AgentSpec.capacity``).

    {"capacity": 3, "weights": {"default": 1, "email": 0.5}, "max": {"email": 5}, "exclusive": ["voice"]}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_WEIGHTS: Mapping[str, float] = {"default": 1.0, "email": 0.5}
DEFAULT_EXCLUSIVE = frozenset({"voice"})
EPSILON = 1e-9  # units are sums of halves and the like: compare with room for rounding


@dataclass(frozen=True)
class Profile:
    id: str
    name: str = ""
    capacity: float = 3.0
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    max_per_channel: Mapping[str, int] = field(default_factory=dict)
    exclusive: frozenset[str] = DEFAULT_EXCLUSIVE

    def weight(self, channel: str) -> float:
        return float(self.weights.get(channel, self.weights.get("default", 1.0)))

    def units(self, load: Mapping[str, int]) -> float:
        """The load in units: exclusive work takes the whole capacity."""
        if any(n and channel in self.exclusive for channel, n in load.items()):
            return self.capacity
        return sum(self.weight(channel) * n for channel, n in load.items() if n)

    def has_room(self, load: Mapping[str, int], channel: str) -> bool:
        held = [c for c, n in load.items() if n]
        if any(c in self.exclusive for c in held if c != channel):
            return False  # on a call: nothing else
        if channel in self.exclusive:
            return not held  # a call needs the agent free (one at a time)
        if load.get(channel, 0) >= self.max_per_channel.get(channel, 1 << 30):
            return False
        return self.units(load) + self.weight(channel) <= self.capacity + EPSILON


def profile_from(profile_id: str, name: str, config: Mapping[str, Any]) -> Profile:
    """A stored profile's configuration (validated when saved: ``ValueError`` says what is wrong)."""
    capacity = float(config.get("capacity", 3.0))
    weights = {str(k): float(v) for k, v in (config.get("weights") or DEFAULT_WEIGHTS).items()}
    maxima = {str(k): int(v) for k, v in (config.get("max") or {}).items()}
    exclusive = frozenset(str(c) for c in config.get("exclusive", sorted(DEFAULT_EXCLUSIVE)))
    if capacity <= 0 or any(w <= 0 for w in weights.values()) or any(m < 0 for m in maxima.values()):
        raise ValueError("capacity and weights must be positive, maxima not negative")
    return Profile(profile_id, name, capacity, weights, maxima, exclusive)
