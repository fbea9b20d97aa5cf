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
from typing import Any

from services.router.domain.routing.specs import Work

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
        "skills": dict(work.skills) if work.skills else None,
        "previous_agent": work.previous_agent,
        "reserved_until": work.reserved_until,
        "declined_by": dict(work.declined_by) if work.declined_by else None,
        "declines": work.declines,
        "overflowed": work.overflowed,
        "acknowledged": work.acknowledged,
    }


def work_from_fact(
    conversation_id: str, fact: Mapping[str, Any], agent_id: str | None, offer_expires: float | None
) -> Work:
    """The work as the fact stored it, held by ``agent_id`` (offered until ``offer_expires``) if given."""
    if fact.get("v") != FACT_VERSION:
        raise ValueError(f"unknown routing fact version {fact.get('v')!r}")
    return Work(
        conversation_id=conversation_id,
        channel=str(fact["channel"]),
        queue_id=str(fact["queue"]),
        enqueued_at=float(fact["enqueued_at"]),
        virtual_time=float(fact["virtual_time"]),
        seq=int(fact["seq"]),
        language=fact.get("language"),
        skills=dict(fact["skills"]) if fact.get("skills") else None,
        previous_agent=fact.get("previous_agent"),
        reserved_until=float(fact.get("reserved_until") or 0.0),
        agent_id=agent_id,
        offer_expires=offer_expires if agent_id is not None else None,
        declined_by={str(a): float(u) for a, u in fact["declined_by"].items()} if fact.get("declined_by") else None,
        declines=int(fact.get("declines") or 0),
        overflowed=bool(fact.get("overflowed")),
        acknowledged=bool(fact.get("acknowledged")),
    )
