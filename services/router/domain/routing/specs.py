"""What routing works with: a queue's and an agent's configuration, and the unit of work it moves between them.
Kept apart from the engine so adapters and the configuration parser can build them without the engine's state.

Priority is *virtual time* = arrival - boost (tier, urgency, escalation): ordering waiting work by it is aging
built in, so higher tiers go first but nothing waits more than its boost behind them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from services.router.domain.routing.capacity import Profile
from services.router.domain.routing.hours import BusinessHours
from services.router.domain.routing.rules import Rule

# Seconds of head start per tier: a gold customer is served as if they had arrived 5 minutes earlier.
TIER_BOOST_S: dict[str, float] = {"standard": 0.0, "silver": 60.0, "gold": 300.0, "platinum": 900.0}
ESCALATION_BOOST_S = 600.0


MissedOffer = Literal["away", "decline"]
Priority = Literal["arrival", "deadline"]


class Strategy(StrEnum):
    LEAST_LOADED = "least_loaded"
    ROUND_ROBIN = "round_robin"
    STICKY = "sticky"
    MANUAL = "manual"


@dataclass(frozen=True)
class Step:
    """One step of a queue's widening: from ``after_s`` after arrival, who may take the work: these agents only
    (``agents``), or agents with these skills at these minimum levels (``skills``), or (neither) anyone of the
    queue. ``queue`` names another queue whose agents take it instead of this queue's (a team: a queue no
    rule sends work to), with the skills if given; the work stays in its own queue (its hours, offers, SLA and
    place in line). A step's requirements replace the previous step's."""

    after_s: float = 0.0
    agents: frozenset[str] | None = None
    skills: Mapping[str, int] | None = None
    queue: str | None = None


@dataclass
class QueueSpec:
    id: str
    name: str = ""
    rule: Rule = field(default_factory=dict)
    order: int = 0  # lower is tried first when several queues match
    is_default: bool = False
    strategy: Strategy = Strategy.LEAST_LOADED
    sticky_wait_s: float = 60.0  # a sticky queue holds work this long for the customer's previous agent
    owner_wait_s: float = 120.0  # any queue holds work this long for the customer's named owner (online, busy)
    offer_timeout_s: float | None = None  # None: assign directly, no offer
    max_declines: int = 3
    # A decline keeps the work from that agent this long (then they may be offered it again).
    decline_exclusion_s: float = 600.0
    # An offer let run out: "away" sets the agent away (back in rotation when they set themselves online);
    # "decline" counts it as a decline and leaves the agent online.
    on_missed_offer: MissedOffer = "away"
    overflow_after_s: float | None = None
    overflow_to: str | None = None
    # "arrival": served by arrival less the tier's head start; "deadline": by first-response deadline (the
    # SLA target of the channel and tier), so a chat goes before an email, until the email's promise is nearer
    priority: Priority = "arrival"
    hours: BusinessHours | None = None
    skills: Mapping[str, int] | None = None  # what an agent needs (skill → minimum level) for this queue's work
    steps: tuple[Step, ...] = ()  # widening in steps (the first at 0 s); none: the queue's skills throughout
    sla: Mapping[str, Any] | None = None  # target overrides and escalation actions (domain/sla.py); not routing
    acknowledgement: Mapping[str, Any] | bool | None = None  # options of domain/acknowledgement.py; not routing
    follow_up: Mapping[str, Any] | bool | None = None  # options of domain/follow_up.py; not routing


@dataclass
class AgentSpec:
    id: str
    queues: frozenset[str]
    capacity: dict[str, int]  # conversations at once per channel ("default" for the rest), if no profile
    skills: dict[str, int] = field(default_factory=dict)
    languages: frozenset[str] = frozenset()
    profile: Profile | None = None  # capacity in weighted units, maxima, exclusive channels (routing/capacity.py)


@dataclass(slots=True)
class Work:
    """One conversation needing (or having) an agent. Kept small: 500k of these may wait."""

    conversation_id: str
    channel: str
    queue_id: str
    enqueued_at: float
    virtual_time: float
    seq: int
    language: str | None = None
    skills: Mapping[str, int] | None = None
    only: frozenset[str] | None = None  # the current step names who may take it
    step: int = 0  # the queue's widening step it is at
    tier: str = "standard"  # its share of the virtual time: a profile change swaps it
    previous_agent: str | None = None  # who last helped the customer (sticky queues prefer them)
    owner: str | None = None  # the customer's named owner (every queue prefers them)
    stage: int = 0  # the preference (owner, then previous agent) considered now; past them, anyone
    not_before: float = 0.0  # a callback's window: nobody is given it before then (0: no window)
    held_for: str | None = None  # the preferred agent the work is held for, while busy ...
    reserved_until: float = 0.0  # ... until then
    agent_id: str | None = None
    offer_expires: float | None = None
    declined_by: dict[str, float] | None = None  # agent → until when they are not offered it again
    declines: int = 0
    overflowed: bool = False
    acknowledged: bool = False
    pool: str | None = None  # the queue whose agents may take it at this step (None: its own queue's)

    @property
    def served_by(self) -> str:
        """The queue whose agents may take it now."""
        return self.pool or self.queue_id

    @property
    def key(self) -> tuple[float, int, str]:
        return (self.virtual_time, self.seq, self.conversation_id)


# Who may take a piece of work, as far as it depends on the work alone: the agents its step names, the skills
# it needs, its language, and the queue whose agents take it (None: its own). Waiting lines are kept per value
# (routing/state.py).
Needs = tuple[frozenset[str] | None, tuple[tuple[str, int], ...], str | None, str | None]


def needs(work: Work) -> Needs:
    skills = tuple(sorted(work.skills.items())) if work.skills else ()
    return (work.only, skills, work.language, work.pool)
