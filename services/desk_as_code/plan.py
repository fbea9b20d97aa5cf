"""The desired desk (``desk_file.py``) against the stored one → a plan: what to create, what to update (each
field old → new) and what is unchanged; and the values each change hands to the configuration handlers. No I/O.

Profiles and queues are known by name (unique in a tenant: the store refuses a second one), agents by name too
(not unique in the store: a file naming an agent the tenant has twice is refused). What the file does not name
is left alone, with one consequence the store imposes: the tenant has one default queue, so a file making
another queue the default takes the flag off a queue it does not name."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from services.desk_as_code.desk_file import (
    AGENT_RENAMES,
    DeskFile,
    DeskFileError,
    Values,
    agent_values,
    profile_values,
    queue_values,
)
from services.desk_as_code.references import agent_references, queue_references, renamed

Kind = Literal["profile", "queue", "agent"]
Action = Literal["create", "update", "unchanged"]
QUEUE_COLUMNS = ("channels", "is_default", "routing")
AGENT_COLUMNS = ("queues", "profile", "capacity", "skills", "languages", "voice_endpoint")


class _Unset:
    """A field a desk leaves out (the API's default applies, or none)."""

    def __repr__(self) -> str:
        return "(unset)"


UNSET: Any = _Unset()


@dataclass(frozen=True)
class Stored:
    id: str
    values: Values  # in a desk file's words: references by name


@dataclass(frozen=True)
class CurrentDesk:
    """The tenant's desk as stored, in a desk file's words."""

    profiles: dict[str, Stored] = field(default_factory=dict)
    queues: dict[str, Stored] = field(default_factory=dict)
    agents: dict[str, list[Stored]] = field(default_factory=dict)  # by name: the store lets two agents share one


@dataclass(frozen=True)
class FieldChange:
    path: str  # dotted: routing.sla.first_response_s.chat
    old: Any  # UNSET when the field was not set
    new: Any


@dataclass(frozen=True)
class Change:
    kind: Kind
    name: str
    action: Action
    values: Values  # as desired, in a desk file's words
    fields: tuple[FieldChange, ...] = ()
    id: str | None = None  # the stored one's
    implied: bool = False  # follows from another change (a new default queue); the handler makes it

    @property
    def changed(self) -> list[str]:
        """The top-level fields an update writes."""
        return list(dict.fromkeys(f.path.split(".")[0] for f in self.fields))


@dataclass(frozen=True)
class Plan:
    tenant: str
    changes: tuple[Change, ...]
    left_alone: tuple[tuple[Kind, str], ...] = ()  # on the desk, not in the file

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def writes(self) -> list[Change]:
        return [c for c in self.changes if c.action != "unchanged" and not c.implied]


@dataclass
class Ids:
    """Names → ids of what exists so far (stored, then created as a plan is applied)."""

    profiles: dict[str, str] = field(default_factory=dict)
    queues: dict[str, str] = field(default_factory=dict)
    agents: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, current: CurrentDesk) -> Ids:
        return cls(
            {name: s.id for name, s in current.profiles.items()},
            {name: s.id for name, s in current.queues.items()},
            {name: found[0].id for name, found in current.agents.items() if len(found) == 1},
        )


def current_desk(profiles: list[Values], queues: list[Values], agents: list[Values]) -> CurrentDesk:
    """Stored rows (as the configuration handler reads them) in a desk file's words, normalized as a file is, so
    equal settings compare equal. A row the API's models would refuse today is compared as it is."""
    profile_names = {p["id"]: p["name"] for p in profiles}
    queue_names = {q["id"]: q["name"] for q in queues}
    agent_names = {a["id"]: a["name"] for a in agents}
    current = CurrentDesk()
    for p in profiles:
        current.profiles[p["name"]] = Stored(p["id"], _normalized(profile_values, {"name": p["name"], **p["config"]}))
    for q in queues:
        routing, _ = renamed(q.get("routing") or {}, queue_names, agent_names, keep_unknown=True)
        entry = {"name": q["name"], "channels": q["channels"], "is_default": q["is_default"], "routing": routing}
        current.queues[q["name"]] = Stored(q["id"], _normalized(queue_values, entry))
    for a in agents:
        entry = {
            "name": a["name"],
            "queues": [queue_names.get(qid, qid) for qid in a.get("queue_ids") or []],
            "profile": profile_names.get(a["profile_id"], a["profile_id"]) if a.get("profile_id") else None,
            **{k: a.get(k) for k in ("capacity", "skills", "languages", "voice_endpoint")},
        }
        current.agents.setdefault(a["name"], []).append(Stored(a["id"], _normalized(agent_values, entry)))
    return current


def plan(desk: DeskFile, current: CurrentDesk, tenant: str) -> Plan:
    """What applying ``desk`` to ``current`` does; ``DeskFileError`` if the file names what neither has."""
    _check_references(desk, current)
    unique_agents = {name: found[0] for name, found in current.agents.items() if len(found) == 1}
    sections: list[tuple[Kind, dict[str, Values], Mapping[str, Stored]]] = [
        ("profile", desk.profiles, current.profiles),
        ("queue", desk.queues, current.queues),
        ("agent", desk.agents, unique_agents),
    ]
    changes: list[Change] = []
    for kind, desired, stored in sections:
        for name, values in desired.items():
            found = stored.get(name)
            if found is None:
                changes.append(Change(kind, name, "create", values))
                continue
            fields = tuple(field_changes(found.values, values))
            changes.append(Change(kind, name, "update" if fields else "unchanged", values, fields, found.id))
    if any(values.get("is_default") for values in desk.queues.values()):
        for name, found in current.queues.items():
            if name not in desk.queues and found.values.get("is_default"):
                unset = (FieldChange("is_default", True, False),)
                changes.append(Change("queue", name, "update", found.values, unset, found.id, implied=True))
    implied = {c.name for c in changes if c.implied}
    left_alone: list[tuple[Kind, str]] = [
        *(("profile", n) for n in current.profiles if n not in desk.profiles),
        *(("queue", n) for n in current.queues if n not in desk.queues and n not in implied),
        *(("agent", n) for n in current.agents if n not in desk.agents),
    ]
    return Plan(tenant, tuple(changes), tuple(left_alone))


def field_changes(old: Any, new: Any, path: str = "") -> list[FieldChange]:
    """Leaf by leaf through nested mappings; anything else (lists included) compares whole."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[FieldChange] = []
        for key in [*new, *(k for k in old if k not in new)]:
            out += field_changes(old.get(key, UNSET), new.get(key, UNSET), f"{path}.{key}" if path else key)
        return out
    return [] if old == new else [FieldChange(path, old, new)]


def queue_write(change: Change, ids: Ids) -> tuple[Values, bool]:
    """What ``Configuration.create_queue`` / ``update_queue`` get, and whether it is complete: a routing that
    names a queue or agent created later goes without those references until they exist (``references.py``)."""
    routing, complete = renamed(change.values["routing"], ids.queues, ids.agents, keep_unknown=False)
    full = {"name": change.name, **{k: change.values[k] for k in QUEUE_COLUMNS}, "routing": routing}
    if change.action == "create":
        return full, complete
    return {k: full[k] for k in change.changed}, complete or "routing" not in change.changed


def agent_write(change: Change, ids: Ids) -> Values:
    """What ``Configuration.create_agent`` / ``update_agent`` get. A new agent starts offline (presence is the
    agent's own); an update sends the fields that changed, ``None`` clearing a profile or voice endpoint."""
    v = change.values
    api: Values = {
        "queue_ids": [ids.queues[q] for q in v["queues"]],
        "profile_id": ids.profiles[v["profile"]] if v.get("profile") else None,
        **{k: v.get(k) for k in ("capacity", "skills", "languages", "voice_endpoint")},
    }
    if change.action == "create":
        return {"name": change.name, "presence": "offline", **{k: x for k, x in api.items() if x is not None}}
    return {AGENT_RENAMES.get(k, k): api[AGENT_RENAMES.get(k, k)] for k in change.changed}


def render(plan: Plan, *, dry_run: bool) -> str:
    """The plan as people read it: one line a thing, each changed field under its update."""
    lines: list[str] = []
    for c in plan.changes:
        why = " (another queue becomes the default)" if c.implied else ""
        lines.append(f"{c.action:<10} {c.kind} {c.name!r}{why}")
        lines += [f"             {f.path}: {_shown(f.old)} → {_shown(f.new)}" for f in c.fields]
    if plan.left_alone:
        lines.append("left alone (not in the file): " + ", ".join(f"{kind} {name!r}" for kind, name in plan.left_alone))
    creates, updates, same = plan.count("create"), plan.count("update"), plan.count("unchanged")
    if not creates and not updates:
        lines.append(f"tenant {plan.tenant}: no change ({same} unchanged)")
    elif dry_run:
        lines.append(
            f"tenant {plan.tenant}: {creates} to create, {updates} to update, {same} unchanged "
            "(dry run: nothing written)"
        )
    else:
        lines.append(f"tenant {plan.tenant}: {creates} created, {updates} updated, {same} unchanged")
    return "\n".join(lines)


def _shown(value: Any) -> str:
    return "(unset)" if value is UNSET else json.dumps(value, ensure_ascii=False)


def _normalized(normalize: Any, entry: Values) -> Values:
    clean = {k: v for k, v in entry.items() if v is not None}
    try:
        values: Values = normalize(clean)
    except DeskFileError:
        values = {k: v for k, v in clean.items() if k != "name"}
    return values


def _check_references(desk: DeskFile, current: CurrentDesk) -> None:
    queues = set(desk.queues) | set(current.queues)
    profiles = set(desk.profiles) | set(current.profiles)
    agents = set(desk.agents) | set(current.agents)
    problems: list[tuple[str, str]] = []

    def ambiguous(name: str) -> str | None:
        found = current.agents.get(name, [])
        if len(found) < 2:
            return None
        ids = ", ".join(s.id for s in found)
        return f"the desk has {len(found)} agents named {name!r} ({ids}): rename all but one (PATCH /v1/agents/{{id}})"

    for name, values in desk.agents.items():
        place = f"agents[{name!r}]"
        if (why := ambiguous(name)) is not None:
            problems.append((place, why))
        problems += [(f"{place}.queues", _missing("queue", q)) for q in values["queues"] if q not in queues]
        if values.get("profile") and values["profile"] not in profiles:
            problems.append((f"{place}.profile", _missing("profile", values["profile"])))
    for name, values in desk.queues.items():
        place = f"queues[{name!r}].routing"
        problems += [(place, _missing("queue", q)) for q in queue_references(values["routing"]) if q not in queues]
        for agent in agent_references(values["routing"]):
            if agent not in agents:
                problems.append((f"{place}.steps", _missing("agent", agent)))
            elif agent not in desk.agents and (why := ambiguous(agent)) is not None:
                problems.append((f"{place}.steps", why))
    if problems:
        raise DeskFileError(problems)


def _missing(kind: str, name: str) -> str:
    return f"no {kind} {name!r} in the file or on the desk"
