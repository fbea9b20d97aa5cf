"""What the engine decided, as values: every engine method returns a list of these and changes nothing outside
itself, so handlers turn them into stored assignments, agent feed events and published messages."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Queued:
    conversation_id: str
    queue_id: str


@dataclass(frozen=True, slots=True)
class Offered:
    conversation_id: str
    agent_id: str
    queue_id: str
    channel: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class Assigned:
    conversation_id: str
    agent_id: str
    queue_id: str
    channel: str
    at: float
    reason: str = "routed"  # routed, accepted, sticky, claimed, transferred


@dataclass(frozen=True, slots=True)
class Unassigned:
    conversation_id: str
    agent_id: str
    reason: str  # agent_offline, declined, offer_timeout, transferred, resolved


@dataclass(frozen=True, slots=True)
class Escalated:
    conversation_id: str
    from_queue: str
    to_queue: str
    reason: str  # waited_too_long, declined_too_often


@dataclass(frozen=True, slots=True)
class AutoAcknowledged:
    conversation_id: str
    queue_id: str
    expected_response_at: float | None  # when the closed queue next opens; None: no opening in sight


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    """The agent's presence changed: by the agent, a supervisor, or routing itself (a missed offer, a lost
    connection), ``reason`` says which."""

    agent_id: str
    presence: str
    reason: str


Decision = Queued | Offered | Assigned | Unassigned | Escalated | AutoAcknowledged | PresenceChanged
