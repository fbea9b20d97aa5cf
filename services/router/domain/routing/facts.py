"""A piece of work's routing state as a stored fact (plain JSON), and back.

The engine in memory is a projection of these facts: every routing transaction stores the facts of the work it
touched (``RoutingState.changes``) with its decisions, and a rebuild restores each work from its fact
(``RoutingState.restore_work``) instead of routing it again. So a transfer, an escalation, a priority boost,
a decline and its exclusion time, a sticky hold or an overflow survive any rebuild, and the rebuilt engine
decides next exactly what the lost one would have. Who holds the work and until when an offer runs are the
assignment's (its row is the single source for "never assigned twice") and are passed in beside the fact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from services.router.domain.routing.specs import TIER_BOOST_S, Work

FACT_VERSION = 1


def work_fact(work: Work) -> dict[str, Any]:
    """Everything about the work that a decision depends on, except who holds it (the assignment says)."""
    return {
        "v": FACT_VERSION,
        "queue": work.queue_id,
        "channel": work.channel,
        "enqueued_at": work.enqueued_at,
        "virtual_time": work.virtual_time,
        "seq": work.seq,
        "language": work.language,
        "tier": work.tier,
        "skills": dict(work.skills) if work.skills else None,
        "only": sorted(work.only) if work.only is not None else None,
        "step": work.step,
        "pool": work.pool,
        "previous_agent": work.previous_agent,
        "owner": work.owner,
        "stage": work.stage,
        "not_before": work.not_before,
        "held_for": work.held_for,
        "reserved_until": work.reserved_until,
        "declined_by": dict(work.declined_by) if work.declined_by else None,
        "declines": work.declines,
        "overflowed": work.overflowed,
        "acknowledged": work.acknowledged,
    }


# work_from_fact builds a Work positionally (a takeover builds one per open conversation, and binding 24
# keywords costs five times binding 24 positions): the order it passes them in, checked against the class.
_WORK_ORDER = (
    "conversation_id", "channel", "queue_id", "enqueued_at", "virtual_time", "seq", "language", "skills", "only",
    "step", "tier", "previous_agent", "owner", "stage", "not_before", "held_for", "reserved_until", "agent_id",
    "offer_expires", "declined_by", "declines", "overflowed", "acknowledged", "pool",
)  # fmt: skip
if tuple(f.name for f in fields(Work)) != _WORK_ORDER:
    raise ImportError("Work's fields moved: update work_from_fact and _WORK_ORDER together")


def work_from_fact(
    conversation_id: str, fact: Mapping[str, Any], agent_id: str | None, offer_expires: float | None
) -> Work:
    """The work as the fact stored it, held by ``agent_id`` (offered until ``offer_expires``) if given. A takeover
    runs this for every open conversation of the tenant: each key is read once."""
    get = fact.get
    if get("v") != FACT_VERSION:
        raise ValueError(f"unknown routing fact version {get('v')!r}")
    skills, only, declined_by = get("skills"), get("only"), get("declined_by")
    return Work(
        conversation_id,
        str(fact["channel"]),
        str(fact["queue"]),
        float(fact["enqueued_at"]),
        float(fact["virtual_time"]),
        int(fact["seq"]),
        get("language"),
        dict(skills) if skills else None,
        frozenset(only) if only is not None else None,
        int(get("step") or 0),
        str(get("tier") or "standard"),
        get("previous_agent"),
        get("owner"),
        int(get("stage") or 0),
        float(get("not_before") or 0.0),
        get("held_for"),
        float(get("reserved_until") or 0.0),
        agent_id,
        offer_expires if agent_id is not None else None,
        {str(a): float(u) for a, u in declined_by.items()} if declined_by else None,
        int(get("declines") or 0),
        bool(get("overflowed")),
        bool(get("acknowledged")),
        get("pool"),
    )


def with_customer(fact: Mapping[str, Any], attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The fact after an edit of the customer's profile: the new tier's head start replaces the old one in the
    virtual time (escalations and arrival kept), the language and the named owner are the profile's; a new
    owner starts the preferences afresh. The work stays in its queue."""
    tier = str(attrs.get("tier") or "standard")
    owner = attrs.get("owner_agent_id") or None
    out = dict(fact)
    out["virtual_time"] = float(fact["virtual_time"]) + TIER_BOOST_S.get(str(fact.get("tier") or "standard"), 0.0)
    out["virtual_time"] -= TIER_BOOST_S.get(tier, 0.0)
    out["tier"] = tier
    out["language"] = attrs.get("language") or None
    if owner != fact.get("owner"):
        out.update(owner=owner, stage=0, held_for=None, reserved_until=0.0)
    return out
