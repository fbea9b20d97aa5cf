"""A trace file: traffic that does not exist yet (or was exported), one JSON object per line (JSON Lines).
The schema is in docs/simulation.md; in short:

    {"at": "2026-01-05T08:00:03Z", "channel": "chat", "tier": "gold", "handle_s": 240, "patience_s": 300}
    {"at": 3605.5, "type": "presence", "agent_id": "ada", "presence": "away"}

``at`` is an ISO 8601 time with its offset, or seconds from the window's start. Every line is checked and
every problem is reported with its line number (up to ``MAX_ERRORS``), so a bad file is fixed in one pass.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Mapping
from typing import Any

from services.router.domain.model import Presence
from services.router.simulation.distributions import Distribution
from services.router.simulation.traffic import ATTRS
from services.router.simulation.workload import HOUR, Arrival, PresenceChange, Window, Workload, parse_time

VERSION = 1
MAX_ERRORS = 20
ARRIVAL_FIELDS = frozenset({"v", "type", "at", "id", "channel", "handle_s", "patience_s", "previous_agent", *ATTRS})
PRESENCE_FIELDS = frozenset({"v", "type", "at", "agent_id", "presence"})


class TraceError(ValueError):
    """The trace cannot be used; the message lists each bad line as ``<file>:<line>: <what is wrong>``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        more = "" if len(problems) < MAX_ERRORS else f"\n(stopped after {MAX_ERRORS} problems)"
        super().__init__("\n".join(problems) + more)


class _Bad(ValueError):
    pass


def read_trace(
    lines: Iterable[str],
    *,
    name: str = "trace",
    start: float | None = None,
    hours: int | None = None,
    handle: Distribution | None = None,
    patience: Distribution | None = None,
    seed: int = 0,
) -> Workload:
    """The workload a trace describes. ``start``: the window's start (default: the hour of the earliest
    absolute ``at``); ``hours``: its length (default: up to the last line's hour). ``handle`` and ``patience``
    are drawn for lines that do not give ``handle_s`` / ``patience_s`` (without ``handle``, those lines are
    errors; without ``patience``, customers without ``patience_s`` never abandon)."""
    rnd = random.Random(seed)
    problems: list[str] = []
    parsed: list[tuple[int, Mapping[str, Any], tuple[bool, float]]] = []  # line, record, (absolute?, at)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise _Bad("a line is one JSON object")
            parsed.append((number, record, _check(record, handle)))
        except json.JSONDecodeError as exc:
            problems.append(f"{name}:{number}: not JSON ({exc.msg} at column {exc.colno})")
        except _Bad as exc:
            problems.append(f"{name}:{number}: {exc}")
        if len(problems) >= MAX_ERRORS:
            raise TraceError(problems)
    if problems:
        raise TraceError(problems)
    if not parsed:
        raise TraceError([f"{name}: no lines"])
    absolute = [at for _, _, (is_abs, at) in parsed if is_abs]
    if start is None:
        start = math.floor(min(absolute) / HOUR) * HOUR if absolute else 0.0
    times = [(at if is_abs else start + at) for _, _, (is_abs, at) in parsed]
    early = [
        f"{name}:{n}: at is before the window's start" for (n, _, _), t in zip(parsed, times, strict=True) if t < start
    ]
    if early:
        raise TraceError(early[:MAX_ERRORS])
    if hours is None:
        hours = max(1, math.ceil((max(times) - start) / HOUR + 1e-9))
    arrivals, presence, seen = [], [], set()
    for (number, record, _), t in sorted(zip(parsed, times, strict=True), key=lambda item: (item[1], item[0][0])):
        if record.get("type") == "presence":
            presence.append(PresenceChange(t, record["agent_id"], Presence(record["presence"])))
            continue
        conversation_id = str(record.get("id") or f"t{number}")
        if conversation_id in seen:
            problems.append(f"{name}:{number}: id {conversation_id!r} appears twice")
        seen.add(conversation_id)
        handle_s = record.get("handle_s")
        patience_s = record.get("patience_s")
        arrivals.append(
            Arrival(
                at=t,
                conversation_id=conversation_id,
                channel=record["channel"],
                attrs={k: record[k] for k in ATTRS if record.get(k) is not None},
                handle_s=float(handle_s) if handle_s is not None else _draw(handle, rnd),
                patience_s=float(patience_s) if patience_s is not None else _maybe(patience, rnd),
                previous_agent=record.get("previous_agent"),
            )
        )
    if problems:
        raise TraceError(problems[:MAX_ERRORS])
    return Workload(Window(start, hours), arrivals, presence)


def _check(record: Mapping[str, Any], handle: Distribution | None) -> tuple[bool, float]:
    """Refuses what the simulation could not use; returns when the line happens (absolute or an offset)."""
    if record.get("v", VERSION) != VERSION:
        raise _Bad(f"unknown trace version {record.get('v')!r} (this reader knows {VERSION})")
    kind = record.get("type", "arrival")
    if kind not in ("arrival", "presence"):
        raise _Bad(f"type: 'arrival' or 'presence', not {kind!r}")
    allowed = PRESENCE_FIELDS if kind == "presence" else ARRIVAL_FIELDS
    unknown = set(record) - allowed
    if unknown:
        raise _Bad(f"unknown field(s) for {kind}: {', '.join(sorted(unknown))}")
    at = _at(record.get("at"))
    if kind == "presence":
        if not isinstance(record.get("agent_id"), str) or not record["agent_id"]:
            raise _Bad("agent_id: required")
        if record.get("presence") not in tuple(p.value for p in Presence):
            raise _Bad("presence: online, away or offline")
        return at
    if not isinstance(record.get("channel"), str) or not record["channel"]:
        raise _Bad('channel: required, e.g. "chat"')
    if "id" in record and not isinstance(record["id"], (str, int)):
        raise _Bad("id: a string")
    for key in ("handle_s", "patience_s"):
        value = record.get(key)
        if value is not None and not (_number(value) and value > 0):
            raise _Bad(f"{key}: a positive number of seconds")
    if record.get("handle_s") is None and handle is None:
        raise _Bad("handle_s: required when no handle-time distribution is given")
    for key, kinds in (("tier", str), ("language", str), ("tags", list), ("attributes", dict), ("skills", dict)):
        if record.get(key) is not None and not isinstance(record[key], kinds):
            raise _Bad(f"{key}: a {kinds.__name__}")
    if record.get("urgency_s") is not None and not _number(record["urgency_s"]):
        raise _Bad("urgency_s: a number of seconds")
    return at


def _at(value: Any) -> tuple[bool, float]:
    if _number(value):
        if value < 0:
            raise _Bad("at: seconds from the window's start are not negative")
        return False, float(value)
    if isinstance(value, str):
        try:
            return True, parse_time(value, "at")
        except ValueError as exc:
            raise _Bad(str(exc)) from None
    raise _Bad("at: required, an ISO 8601 time or seconds from the window's start")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _draw(distribution: Distribution | None, rnd: random.Random) -> float:
    assert distribution is not None  # checked per line
    return distribution.draw(rnd)


def _maybe(distribution: Distribution | None, rnd: random.Random) -> float | None:
    return distribution.draw(rnd) if distribution is not None else None
