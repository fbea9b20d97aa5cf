"""Plain values the routing core decides over. No I/O: adapters load and save them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from services.router.domain.routing.capacity import Profile


class Presence(StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


class ConversationStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    MERGED = "merged"  # folded into another conversation when its customer was merged


class Tier(StrEnum):
    """Loyalty tiers, lowest first: routing serves higher tiers first, SLAs are tighter for them."""

    STANDARD = "standard"
    SILVER = "silver"
    GOLD = "gold"
    PLATINUM = "platinum"


# Concurrent conversations an agent takes per channel unless configured otherwise ("chat 3, email 5, voice 1").
DEFAULT_CAPACITY: dict[str, int] = {"default": 3, "email": 5, "voice": 1}


@dataclass(frozen=True, slots=True)
class QueueRule:
    id: str
    name: str
    channels: frozenset[str]
    is_default: bool = False
    routing: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AgentRow:
    """An agent as stored: the routing engine derives its load from the conversations it holds."""

    id: str
    presence: Presence
    capacity: dict[str, int]
    queue_ids: frozenset[str]
    last_assigned_at: datetime | None = None
    skills: dict[str, int] = field(default_factory=dict)
    languages: frozenset[str] = frozenset()
    profile: Profile | None = None


@dataclass(frozen=True, slots=True)
class Assignment:
    conversation_id: str
    agent_id: str
    queue_id: str
    channel: str
    assigned_at: datetime
    offer_expires_at: datetime | None = None


def routing_attrs_of(
    tier: str, language: str | None, tags: Any, attributes: Any, owner_agent_id: str | None
) -> dict[str, Any]:
    """What queue rules and the engine see of a customer (a stored row's values, or a new customer's)."""
    return {
        "tier": tier,
        "language": language,
        "tags": list(tags or []),
        "attributes": dict(attributes or {}),
        "owner_agent_id": owner_agent_id,
    }
