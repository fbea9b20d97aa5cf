"""Presence inferred from console connections: what an agent's presence becomes once their last connection
dropped. A connection alone never sets anyone online; only a drop while the presence stood counts (an agent who
sets themselves online after their console closed chose to be online without one)."""

from __future__ import annotations

from datetime import datetime

from services.router.domain.model import Presence

DISCONNECTED = "disconnected"  # the reason of a presence routing inferred from a lost connection


def inferred(
    presence: Presence,
    reason: str | None,
    changed_at: datetime,
    lost_at: datetime,
    now: datetime,
    grace_s: float,
    offline_s: float,
) -> Presence | None:
    """The presence an agent with no live connection since ``lost_at`` should have at ``now``, if it should
    change: away once ``grace_s`` passed (online agents), offline once ``offline_s`` passed."""
    if presence is Presence.OFFLINE:
        return None
    if lost_at < changed_at and reason != DISCONNECTED:
        return None  # set after the drop, by someone: it stands
    gone = (now - lost_at).total_seconds()
    if gone >= offline_s:
        return Presence.OFFLINE
    if presence is Presence.ONLINE and gone >= grace_s:
        return Presence.AWAY
    return None
