"""A desk to simulate: routing profiles, queues and agents in the shapes the API takes (the bodies of
``POST /v1/profiles``, ``/v1/queues`` and ``/v1/agents``, each with its ``id``), plus what only a simulation
needs: agents' shifts, how many agents a line stands for, and how agents answer offers.

    {"timezone": "Europe/Paris",
     "profiles": [{"id": "standard", "name": "Standard", "capacity": 3, "weights": {"default": 1, "email": 0.5}}],
     "queues": [{"id": "care", "name": "Care", "is_default": true, "routing": {"offer_timeout_s": 30}}],
     "agents": [{"id": "care", "name": "Care team", "count": 12, "queue_ids": ["care"],
                 "profile_id": "standard", "shifts": ["08:00-16:00"]}],
     "behaviour": {"accept_after_s": 3, "decline_rate": 0.02, "miss_rate": 0.01, "back_after_missed_s": 120}}

Queue routing is checked and turned into the engine's ``QueueSpec`` by the domain's own ``queue_config`` (the
function the router uses), so a configuration the API would refuse is refused here with the same message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from services.router.domain.errors import InvalidCommand
from services.router.domain.model import DEFAULT_CAPACITY, Presence
from services.router.domain.routing.capacity import Profile, profile_from
from services.router.domain.routing.queue_config import check, queue_spec
from services.router.domain.routing.specs import AgentSpec, QueueSpec, Strategy
from services.router.simulation.shifts import Shifts, Span, parse_shifts, per_hour_spans
from services.router.simulation.workload import Window

DESK_FIELDS = frozenset({"timezone", "profiles", "queues", "agents", "behaviour"})
PROFILE_FIELDS = frozenset({"id", "name", "capacity", "weights", "max", "exclusive"})
QUEUE_FIELDS = frozenset({"id", "name", "channels", "is_default", "routing"})
# the fields of RoutingIn (entrypoints/http/configuration.py), which refuses any other
ROUTING_FIELDS = frozenset(
    {
        "rule", "order", "strategy", "sticky_wait_s", "owner_wait_s", "offer_timeout_s", "max_declines",
        "decline_exclusion_s", "on_missed_offer", "priority", "steps", "overflow_after_s", "overflow_to",
        "skills", "hours", "sla",
    }
)  # fmt: skip
AGENT_FIELDS = frozenset(
    {"id", "name", "queue_ids", "capacity", "presence", "skills", "languages", "profile_id", "voice_endpoint"}
    | {"count", "shifts", "per_hour"}
)
BEHAVIOUR_FIELDS = frozenset({"accept_after_s", "decline_rate", "miss_rate", "back_after_missed_s"})


class DeskError(ValueError):
    """The desk configuration cannot be used; the message names the field (``agents[2].queue_ids``)."""


@dataclass(frozen=True)
class Behaviour:
    """How simulated agents answer an offer (queues with ``offer_timeout_s``): after ``accept_after_s`` they
    decline it with probability ``decline_rate``, let it run out with ``miss_rate``, else accept. An agent set
    away by a missed offer sets themselves online again ``back_after_missed_s`` later."""

    accept_after_s: float = 2.0
    decline_rate: float = 0.0
    miss_rate: float = 0.0
    back_after_missed_s: float = 120.0


@dataclass(frozen=True)
class AgentGroup:
    """One line of ``agents``: ``count`` agents alike (ids ``<id>-1`` … when more than one)."""

    id: str
    count: int
    spec: AgentSpec  # the first agent's; the others differ only by id
    presence: Presence = Presence.ONLINE  # without shifts: their presence throughout
    shifts: Shifts | None = None
    per_hour: tuple[int, ...] | None = None

    def agent_ids(self) -> list[str]:
        return [self.id] if self.count == 1 else [f"{self.id}-{n + 1}" for n in range(self.count)]

    def specs(self) -> list[AgentSpec]:
        return [replace(self.spec, id=agent_id) for agent_id in self.agent_ids()]

    def at_work(self, index: int, window: Window) -> list[Span] | None:
        """When agent ``index`` of the group works; None: no schedule (``presence`` throughout)."""
        if self.per_hour is not None:
            return per_hour_spans(self.per_hour, index, window)
        return self.shifts.spans(window) if self.shifts is not None else None


@dataclass(frozen=True)
class Desk:
    queues: tuple[QueueSpec, ...]
    agents: tuple[AgentGroup, ...]
    profiles: Mapping[str, Profile] = field(default_factory=dict)
    behaviour: Behaviour = Behaviour()
    timezone: str = "UTC"

    def group(self, group_id: str | None) -> AgentGroup:
        """The named group of agents (default: the first)."""
        for group in self.agents:
            if group_id is None or group.id == group_id:
                return group
        raise DeskError(f"agents: no agent line with id {group_id!r}")

    def with_group(self, group: AgentGroup) -> Desk:
        return replace(self, agents=tuple(group if g.id == group.id else g for g in self.agents))


def load_desk(path: Path) -> Desk:
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DeskError(f"{path}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    try:
        return desk_of(raw)
    except DeskError as exc:
        raise DeskError(f"{path}: {exc}") from None


def desk_of(raw: Any) -> Desk:
    _object(raw, DESK_FIELDS, "the desk")
    timezone = raw.get("timezone", "UTC")
    profiles = {p.id: p for p in (_profile(p, f"profiles[{n}]") for n, p in enumerate(_list(raw, "profiles")))}
    queues = [_queue(q, n) for n, q in enumerate(_list(raw, "queues"))]
    if not queues:
        raise DeskError("queues: at least one queue")
    ids = {q.id for q in queues}
    for n, q in enumerate(queues):
        if q.overflow_to is not None and q.overflow_to not in ids:
            raise DeskError(f"queues[{n}].routing.overflow_to: no queue {q.overflow_to!r}")
    groups = [_group(a, f"agents[{n}]", ids, profiles, timezone) for n, a in enumerate(_list(raw, "agents"))]
    agent_ids = [agent_id for g in groups for agent_id in g.agent_ids()]
    if len(set(agent_ids)) != len(agent_ids):
        raise DeskError("agents: two agents have the same id")
    return Desk(tuple(queues), tuple(groups), profiles, _behaviour(raw.get("behaviour") or {}), timezone)


def _profile(raw: Any, where: str) -> Profile:
    _object(raw, PROFILE_FIELDS, where)
    config = {k: v for k, v in raw.items() if k not in ("id", "name")}
    try:
        return profile_from(_id(raw, where), str(raw.get("name", "")), config)
    except (TypeError, ValueError, AttributeError) as exc:
        raise DeskError(f"{where}: {exc}") from None


def _queue(raw: Any, order: int) -> QueueSpec:
    where = f"queues[{order}]"
    _object(raw, QUEUE_FIELDS, where)
    routing = raw.get("routing") or {}
    _object(routing, ROUTING_FIELDS, f"{where}.routing")
    try:
        check(routing)
        Strategy(routing.get("strategy", Strategy.LEAST_LOADED.value))
        channels = frozenset(_strings(raw.get("channels") or [], f"{where}.channels"))
        return queue_spec(
            _id(raw, where), str(raw.get("name", "")), channels, bool(raw.get("is_default")), order, routing
        )
    except (InvalidCommand, ValueError, TypeError) as exc:
        raise DeskError(f"{where}: {exc}") from None


def _group(raw: Any, where: str, queues: set[str], profiles: Mapping[str, Profile], timezone: str) -> AgentGroup:
    _object(raw, AGENT_FIELDS, where)
    agent_id = _id(raw, where)
    queue_ids = frozenset(_strings(raw.get("queue_ids") or [], f"{where}.queue_ids"))
    if queue_ids - queues:
        raise DeskError(f"{where}.queue_ids: no queue {', '.join(sorted(queue_ids - queues))}")
    profile_id = raw.get("profile_id")
    if profile_id is not None and profile_id not in profiles:
        raise DeskError(f"{where}.profile_id: no profile {profile_id!r}")
    capacity = raw.get("capacity", DEFAULT_CAPACITY)
    skills = raw.get("skills") or {}
    if not _counts(capacity) or not _counts(skills):
        raise DeskError(f"{where}: capacity and skills map names to whole numbers of 0 or more")
    per_hour = raw.get("per_hour")
    if per_hour is not None and (
        not isinstance(per_hour, list) or not per_hour or not _counts(dict(enumerate(per_hour)))
    ):
        raise DeskError(f"{where}.per_hour: a list of head counts (whole numbers of 0 or more), one per hour")
    if per_hour is not None and raw.get("shifts") is not None:
        raise DeskError(f"{where}: give shifts or per_hour, not both")
    count = raw.get("count", max(per_hour) if per_hour else 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise DeskError(f"{where}.count: a whole number of 1 or more")
    try:
        presence = Presence(raw.get("presence", Presence.ONLINE.value))
        shifts = parse_shifts(raw["shifts"], timezone, f"{where}.shifts") if raw.get("shifts") is not None else None
    except (ValueError, KeyError) as exc:
        raise DeskError(str(exc)) from None
    spec = AgentSpec(
        agent_id,
        queue_ids,
        {str(k): int(v) for k, v in capacity.items()},
        {str(k): int(v) for k, v in skills.items()},
        frozenset(_strings(raw.get("languages") or [], f"{where}.languages")),
        profiles[profile_id] if profile_id is not None else None,
    )
    return AgentGroup(agent_id, count, spec, presence, shifts, tuple(per_hour) if per_hour is not None else None)


def _behaviour(raw: Any) -> Behaviour:
    _object(raw, BEHAVIOUR_FIELDS, "behaviour")
    values = {k: raw[k] for k in BEHAVIOUR_FIELDS if k in raw}
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in values.values()):
        raise DeskError("behaviour: numbers of 0 or more")
    behaviour = Behaviour(**{k: float(v) for k, v in values.items()})
    if behaviour.decline_rate + behaviour.miss_rate > 1:
        raise DeskError("behaviour: decline_rate + miss_rate is at most 1")
    return behaviour


def _object(raw: Any, allowed: frozenset[str], where: str) -> None:
    if not isinstance(raw, Mapping):
        raise DeskError(f"{where}: an object")
    unknown = set(raw) - allowed
    if unknown:
        raise DeskError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")


def _list(raw: Mapping[str, Any], key: str) -> list[Any]:
    value = raw.get(key) or []
    if not isinstance(value, list):
        raise DeskError(f"{key}: a list")
    return value


def _id(raw: Mapping[str, Any], where: str) -> str:
    value = raw.get("id")
    if not isinstance(value, str) or not value:
        raise DeskError(f"{where}.id: required, a string")
    return value


def _strings(values: Any, where: str) -> Sequence[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise DeskError(f"{where}: a list of strings")
    return values


def _counts(values: Any) -> bool:
    return isinstance(values, Mapping) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values.values()
    )
