"""When the faults happen and what each one saw. Faults are placed by messages actually sent, never by a nominal
rate times time: a run that reaches only a sixth of its offered rate still has its faults spread over all of
its traffic. Every kind comes round after round (kind 1, 2, … 7, then again), fault j of n at message
``messages * (2j + 1) / 2n``, so each sits in the middle of its own equal share of the run. Each fault is
recorded with the messages sent while it lasted; a fault that no message saw proves nothing, and fails the run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Planned:
    kind: str
    at_message: int  # the fault starts once this many messages have been sent


def plan(kinds: Sequence[str], rounds: int, messages: int) -> list[Planned]:
    """``rounds`` faults of each kind, in turn, evenly over ``messages``."""
    if rounds < 1 or not kinds:
        raise ValueError("at least one kind and one round")
    n = rounds * len(kinds)
    if messages < 2 * n:
        raise ValueError(f"{messages} messages cannot carry {n} faults with traffic during each")
    return [Planned(kinds[j % len(kinds)], messages * (2 * j + 1) // (2 * n)) for j in range(n)]


@dataclass
class FaultRecord:
    kind: str
    description: str
    planned_at_message: int
    started_at: str = ""  # UTC, ISO 8601
    ended_at: str = ""
    started_s: float = 0.0  # seconds since the traffic started
    ended_s: float = 0.0
    sent_at_start: int = 0
    sent_at_end: int = 0
    messages_sent_during: int = 0  # messages whose first request went out while the fault lasted
    accepted_during: int = 0  # messages a client got accepted while it lasted (0 is possible: nothing is up)
    recovered_s: float | None = None  # after the end: every process ready and a message accepted again
    details: dict[str, Any] = field(default_factory=dict)  # what was verified (ports closed and open, pids)
    error: str | None = None  # the fault could not be injected as described

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def summarize(records: Sequence[FaultRecord], kinds: Sequence[str], rounds: int) -> dict[str, Any]:
    """The counts that must be zero about the faults themselves, and what each kind saw."""
    done = Counter(r.kind for r in records if r.error is None)
    per_kind = {
        kind: {
            "times": done[kind],
            "messages_sent_during": [r.messages_sent_during for r in records if r.kind == kind],
        }
        for kind in kinds
    }
    return {
        "per_kind": per_kind,
        "fault_kinds_short": sum(1 for kind in kinds if done[kind] < rounds),
        "faults_without_traffic": sum(1 for r in records if r.messages_sent_during <= 0),
        "faults_failed": sum(1 for r in records if r.error is not None),
        "faults_not_recovered": sum(1 for r in records if r.recovered_s is None),
    }
