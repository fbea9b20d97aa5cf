"""A queue's routing configuration as stored (JSON) → the engine's QueueSpec. Validated when a supervisor
saves it, so routing never meets a malformed rule or time zone.

    {"rule": {...}, "strategy": "sticky", "sticky_wait_s": 60, "owner_wait_s": 120, "offer_timeout_s": 30,
     "max_declines": 3,
     "decline_exclusion_s": 600, "on_missed_offer": "away", "priority": "arrival",
     "steps": [{"after_s": 0, "agents": ["<agent id>"]}, {"after_s": 60, "skills": {"billing": 3}}, {"after_s": 180},
               {"after_s": 600, "queue": "<another queue's id: its agents>"}],
     "overflow_after_s": 300, "overflow_to": "<queue id>", "skills": {"billing": 2},
     "hours": {"timezone": "Europe/Paris", "week": {"mon": ["09:00-17:00"]}, "holidays": ["2026-12-25"]},
     "acknowledgement": {"enabled": true, "channels": {"chat": false}, "templates": {"de": {"by": "… {by}"}}},
     "follow_up": {"after_s": 172800, "channels": {"sms": false}, "templates": {"fr": "Tout est-il réglé ?"}}}
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise
from typing import Any

from services.router.domain import follow_up
from services.router.domain.acknowledgement import options_of
from services.router.domain.errors import InvalidCommand
from services.router.domain.routing.hours import BusinessHours
from services.router.domain.routing.rules import InvalidRule, Rule, validate
from services.router.domain.routing.specs import MissedOffer, QueueSpec, Step, Strategy


def hours_of(config: Mapping[str, Any]) -> BusinessHours | None:
    hours = config.get("hours")
    if not hours:
        return None
    return BusinessHours.parse(hours["timezone"], hours.get("week", {}), hours.get("holidays"))


def missed_offer(config: Mapping[str, Any]) -> MissedOffer:
    value = config.get("on_missed_offer", "away")
    if value not in ("away", "decline"):
        raise ValueError(f"on_missed_offer must be 'away' or 'decline', not {value!r}")
    return "away" if value == "away" else "decline"


def steps_of(config: Mapping[str, Any]) -> tuple[Step, ...]:
    """``steps``: ``[{"after_s": 0, "agents": [...]}, {"after_s": 60, "skills": {"billing": 3}}, {"after_s": 180}]``,
    the first at 0 s, each later than the one before."""
    steps = tuple(
        Step(
            float(raw.get("after_s", 0.0)),
            frozenset(raw["agents"]) if raw.get("agents") else None,
            {str(k): int(v) for k, v in raw["skills"].items()} if raw.get("skills") else None,
            _queue_named(raw.get("queue")),
        )
        for raw in config.get("steps") or ()
    )
    if steps and steps[0].after_s != 0:
        raise ValueError("the first step starts at 0 s")
    if any(b.after_s <= a.after_s for a, b in pairwise(steps)):
        raise ValueError("each step starts later than the one before")
    return steps


def _queue_named(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a step's queue is a queue id (its agents take the work at that step)")
    return value


def check(config: Mapping[str, Any]) -> None:
    """Refuse what routing could not use (InvalidCommand → 422 at the API)."""
    try:
        validate(config.get("rule") or {})
        hours_of(config)
        missed_offer(config)
        steps_of(config)
        options_of(config.get("acknowledgement"))
        follow_up.options_of(config.get("follow_up"))
        if float(config.get("decline_exclusion_s", 0)) < 0:
            raise ValueError("decline_exclusion_s must not be negative")
    except (InvalidRule, ValueError, KeyError, LookupError) as exc:
        raise InvalidCommand(f"invalid routing configuration: {exc}") from exc


def queue_spec(
    queue_id: str, name: str, channels: frozenset[str], is_default: bool, order: int, config: Mapping[str, Any]
) -> QueueSpec:
    """Channels and the rule both select: a queue for email with a gold rule takes gold customers' email."""
    parts: list[Rule] = []
    if channels and not is_default:
        parts.append({"attr": "channel", "in": sorted(channels)})
    if config.get("rule"):
        parts.append(config["rule"])
    rule: Rule = {} if not parts else parts[0] if len(parts) == 1 else {"all": parts}
    return QueueSpec(
        queue_id,
        name,
        rule=rule,
        order=int(config.get("order", order)),
        is_default=is_default,
        strategy=Strategy(config.get("strategy", Strategy.LEAST_LOADED.value)),
        sticky_wait_s=float(config.get("sticky_wait_s", 60.0)),
        owner_wait_s=float(config.get("owner_wait_s", 120.0)),
        offer_timeout_s=config.get("offer_timeout_s"),
        max_declines=int(config.get("max_declines", 3)),
        decline_exclusion_s=float(config.get("decline_exclusion_s", 600.0)),
        on_missed_offer=missed_offer(config),
        overflow_after_s=config.get("overflow_after_s"),
        overflow_to=config.get("overflow_to"),
        priority="deadline" if config.get("priority") == "deadline" else "arrival",
        hours=hours_of(config),
        skills=dict(config["skills"]) if config.get("skills") else None,
        steps=steps_of(config),
        sla=dict(config["sla"]) if config.get("sla") else None,
        acknowledgement=config.get("acknowledgement"),
        follow_up=config.get("follow_up"),
    )
