"""A desk file (YAML) → the desired desk, validated by the REST API's own input models
(``entrypoints/http/configuration.py`` ``QueueIn`` and ``AgentIn``, ``entrypoints/http/profiles.py``
``ProfileIn``), so a file is accepted exactly when the same values would be by ``POST /v1/queues``,
``/v1/agents`` and ``/v1/profiles``. No I/O: the caller reads the file.

The file names things, the store has ids: an agent's ``queues`` and ``profile``, a queue's ``overflow_to``
and ``escalate_to``, and a widening step's ``agents`` are names here (``plan.py`` resolves them). Every value is
in the shape the API stores (defaults filled in, ``None`` left out), so a desk file and a stored desk compare
field by field."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml  # type: ignore[import-untyped]  # no types-PyYAML among the dependencies
from pydantic import BaseModel, ValidationError

from services.router.entrypoints.http.configuration import AgentIn, QueueIn
from services.router.entrypoints.http.profiles import ProfileIn

Values = dict[str, Any]

SECTIONS = ("profiles", "queues", "agents")
TOP_LEVEL = ("tenant", *SECTIONS)
AGENT_FIELDS = ("name", "queues", "profile", "capacity", "skills", "languages", "voice_endpoint")
# the desk file's names for the API's id fields (an agent's queues and profile are named, not numbered)
AGENT_RENAMES = {"queues": "queue_ids", "profile": "profile_id"}
AGENT_RENAMES_BACK = {v: k for k, v in AGENT_RENAMES.items()}


class DeskFileError(ValueError):
    """What is wrong with a desk file, one problem a line, each naming its place (``queues['Email'].channels``)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        """``problems``: (where, what), where a dotted path ("" for the whole)."""
        super().__init__("\n".join(f"{where}: {what}" if where else what for where, what in problems))
        self.problems = problems

    def under(self, place: str) -> list[tuple[str, str]]:
        """The problems, placed under ``place``."""
        return [(f"{place}.{where}" if where else place, what) for where, what in self.problems]


@dataclass(frozen=True)
class DeskFile:
    """The desired desk, each section by name in the file's order."""

    tenant: str | None
    profiles: dict[str, Values] = field(default_factory=dict)  # name → capacity, weights, max, exclusive
    queues: dict[str, Values] = field(default_factory=dict)  # name → channels, is_default, routing
    agents: dict[str, Values] = field(default_factory=dict)  # name → queues, profile, capacity, skills, ...


def read_desk(text: str) -> DeskFile:
    """The desk a file's text declares; ``DeskFileError`` with every problem found."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DeskFileError([("", f"not YAML: {exc}".replace("\n", " "))]) from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise DeskFileError([("", "the file holds a mapping: tenant, profiles, queues, agents")])
    problems = [
        (str(key), f"unknown section (a desk file has {', '.join(TOP_LEVEL)})") for key in raw if key not in TOP_LEVEL
    ]
    tenant = raw.get("tenant")
    if tenant is not None and not isinstance(tenant, str):
        problems.append(("tenant", "a tenant id (text)"))
    normalizers: dict[str, Callable[[Mapping[str, Any]], Values]] = {
        "profiles": profile_values,
        "queues": queue_values,
        "agents": agent_values,
    }
    sections = {name: _section(raw, name, normalizers[name], problems) for name in SECTIONS}
    defaults = [name for name, values in sections["queues"].items() if values.get("is_default")]
    if len(defaults) > 1:
        problems.append(
            ("queues", f"one default queue at most, not {len(defaults)} ({', '.join(map(repr, defaults))})")
        )
    if problems:
        raise DeskFileError(problems)
    return DeskFile(tenant, sections["profiles"], sections["queues"], sections["agents"])


def profile_values(entry: Mapping[str, Any]) -> Values:
    """A routing profile's configuration as ``POST /v1/profiles`` stores it (without its name)."""
    return _dumped(ProfileIn, entry, exclude={"name"})


def queue_values(entry: Mapping[str, Any]) -> Values:
    """A queue as ``POST /v1/queues`` stores it (without its name): channels, is_default, routing."""
    return _dumped(QueueIn, entry, exclude={"name"})


def agent_values(entry: Mapping[str, Any]) -> Values:
    """An agent as ``POST /v1/agents`` stores it, in the file's words (``queues``, ``profile``), without its name
    and presence: presence is the agent's own, set from the console, never by a desk file."""
    unknown = [key for key in entry if key not in AGENT_FIELDS]
    if unknown:
        raise DeskFileError(
            [(str(key), f"not an agent's field in a desk file (it has {', '.join(AGENT_FIELDS)})") for key in unknown]
        )
    api = {AGENT_RENAMES.get(key, key): value for key, value in entry.items()}
    values = _dumped(AgentIn, api, exclude={"name", "presence"})
    return {AGENT_RENAMES_BACK.get(key, key): value for key, value in values.items()}


def _dumped(model: type[BaseModel], entry: Mapping[str, Any], exclude: set[str]) -> Values:
    try:
        parsed = model.model_validate(dict(entry))
    except ValidationError as exc:
        raise DeskFileError([_problem(error) for error in exc.errors()]) from exc
    return parsed.model_dump(mode="json", exclude_none=True, exclude=exclude)


def _problem(error: Any) -> tuple[str, str]:
    """One pydantic error as (where, what), in the desk file's names."""
    where = ".".join(str(AGENT_RENAMES_BACK.get(str(part), part)) for part in error["loc"])
    return where, str(error["msg"]).removeprefix("Value error, ")


def _section(
    raw: Mapping[str, Any],
    section: str,
    normalize: Callable[[Mapping[str, Any]], Values],
    problems: list[tuple[str, str]],
) -> dict[str, Values]:
    """One section's entries by name; what is wrong with them goes to ``problems``, each named by its place."""
    entries = raw.get(section) or []
    if not isinstance(entries, list):
        problems.append((section, "a list of entries, each with a name"))
        return {}
    out: dict[str, Values] = {}
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
            problems.append((f"{section}[{index}]", "an entry with a name"))
            continue
        name = entry["name"]
        place = f"{section}[{name!r}]"
        if name in seen:
            problems.append((place, f"named twice (names are how the file refers to the desk's {section})"))
            continue
        seen.add(name)
        try:
            out[name] = normalize(entry)
        except DeskFileError as exc:
            problems.extend(exc.under(place))
    return out
