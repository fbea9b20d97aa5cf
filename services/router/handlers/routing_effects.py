"""What a routing pass's decisions do to the store and the feeds: the net effect of one tenant's decisions
(``effects_of``), read by ``RoutingStates`` to write them in a few set-wise statements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.router.domain.model import Assignment
from services.router.domain.routing import decisions as decision  # "decisions": the lists of them, below
from services.router.domain.routing.decisions import Decision
from services.router.handlers.agent_feed import SUPERVISORS, new_agent_event
from services.router.handlers.ports.conversations import Note


@dataclass
class Effects:
    """The net effect of one tenant's decisions on the store and the feeds."""

    queued: dict[str, str | None] = field(default_factory=dict)
    fresh: dict[str, Assignment] = field(default_factory=dict)  # made in this pass
    accepted: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)  # held before this pass
    feed: list[dict[str, Any]] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    escalated: list[str] = field(default_factory=list)
    presence: dict[str, str] = field(default_factory=dict)


def effects_of(
    tenant_id: str, decisions: list[Decision], now: datetime, causes: Mapping[str, Mapping[str, str]]
) -> Effects:
    e = Effects()

    def work_event(d: decision.Offered | decision.Assigned, event_type: str, **data: Any) -> dict[str, Any]:
        """An offer or assignment on the agent's feed, with the message that caused it (if one did)."""
        caused = causes.get(d.conversation_id, {})
        return new_agent_event(
            tenant_id,
            d.agent_id,
            event_type,
            d.conversation_id,
            now,
            queue_id=d.queue_id,
            channel=d.channel,
            **data,
            **caused,
        )

    for d in decisions:
        if isinstance(d, decision.Queued):
            e.queued[d.conversation_id] = d.queue_id
        elif isinstance(d, decision.Offered):
            expires = datetime.fromtimestamp(d.expires_at, UTC)
            e.fresh[d.conversation_id] = Assignment(d.conversation_id, d.agent_id, d.queue_id, d.channel, now, expires)
            e.feed.append(work_event(d, "offer", expires_at=expires))
        elif isinstance(d, decision.Assigned):
            if d.reason == "accepted" and d.conversation_id not in e.fresh:
                e.accepted.append(d.conversation_id)  # an offer stored before this pass: its row is kept
            else:  # a new assignment, or an offer of this very pass accepted at once: one row, held
                e.fresh[d.conversation_id] = Assignment(d.conversation_id, d.agent_id, d.queue_id, d.channel, now)
            e.feed.append(work_event(d, "assignment", assigned_at=now, reason=d.reason))
        elif isinstance(d, decision.Unassigned):
            if d.reason != "resolved" and e.fresh.pop(d.conversation_id, None) is None:
                e.released.append(d.conversation_id)
                if d.conversation_id in e.accepted:
                    e.accepted.remove(d.conversation_id)
            e.feed.append(
                new_agent_event(tenant_id, d.agent_id, "unassignment", d.conversation_id, now, reason=d.reason)
            )
        elif isinstance(d, decision.Escalated):
            e.escalated.append(d.conversation_id)
            e.notes.append(
                (
                    d.conversation_id,
                    "escalated",
                    {"from_queue": d.from_queue, "to_queue": d.to_queue, "reason": d.reason},
                )
            )
        elif isinstance(d, decision.PresenceChanged):
            e.presence[d.agent_id] = d.reason
            for feed_id in (d.agent_id, SUPERVISORS):
                e.feed.append(
                    new_agent_event(
                        tenant_id,
                        feed_id,
                        "presence",
                        None,
                        now,
                        agent=d.agent_id,
                        presence=d.presence,
                        reason=d.reason,
                    )
                )
        elif isinstance(d, decision.AutoAcknowledged):
            expected = datetime.fromtimestamp(d.expected_response_at, UTC) if d.expected_response_at else None
            e.notes.append(
                (d.conversation_id, "auto_acknowledged", {"queue_id": d.queue_id, "expected_response_at": expected})
            )
    return e
