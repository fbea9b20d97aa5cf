"""What a simulation is given to do: a window of time, the conversations that arrive in it (each with its
handle time and its customer's patience drawn once, so a baseline and a proposal meet the very same customers),
and presence changes a trace recorded. Built by ``traffic.py`` (synthetic) or ``trace.py`` (a file)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.router.domain.model import Presence

HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class Window:
    """The hours the results cover, from ``start`` (epoch seconds, UTC). The run goes on for ``drain_s``
    after the last hour without new arrivals, so late arrivals get an answer (or abandon) and are measured."""

    start: float
    hours: int
    drain_s: float = 2 * HOUR

    @property
    def end(self) -> float:
        return self.start + self.hours * HOUR

    @property
    def stop(self) -> float:
        return self.end + self.drain_s

    def hour_of(self, t: float) -> int:
        return int((t - self.start) // HOUR)

    def label(self, hour: int) -> str:
        return datetime.fromtimestamp(self.start + hour * HOUR, UTC).strftime("%Y-%m-%dT%H:%MZ")


@dataclass(frozen=True, slots=True)
class Arrival:
    """A conversation that needs an agent. ``attrs`` is what queue rules and the engine see of the customer
    (tier, language, tags, attributes, owner_agent_id, skills, urgency_s), as the router passes them."""

    at: float
    conversation_id: str
    channel: str
    attrs: Mapping[str, Any]
    handle_s: float
    patience_s: float | None = None  # None: the customer never gives up
    previous_agent: str | None = None

    @property
    def tier(self) -> str:
        return str(self.attrs.get("tier") or "standard")


@dataclass(frozen=True, slots=True)
class PresenceChange:
    """An agent's presence as a trace recorded it (it overrides their shifts from then on)."""

    at: float
    agent_id: str
    presence: Presence


@dataclass(frozen=True)
class Workload:
    window: Window
    arrivals: Sequence[Arrival]  # in time order
    presence: Sequence[PresenceChange] = field(default_factory=tuple)  # in time order


DEFAULT_START = "2026-01-05T00:00:00Z"  # a Monday, so weekday shifts and business hours start the week


def parse_time(text: str, where: str) -> float:
    """An ISO 8601 time with its offset, as epoch seconds (``ValueError`` names ``where``)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise ValueError(f"{where}: not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"{where}: give the offset (e.g. Z or +02:00): {text!r}")
    return moment.timestamp()
