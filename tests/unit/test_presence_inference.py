"""Presence inferred from console connections (``domain/presence.py``): expectations as a support desk states
them, one row per case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.router.domain.model import Presence
from services.router.domain.presence import inferred

T = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
GRACE, OFFLINE = 60.0, 900.0
ONLINE, AWAY, OFF = Presence.ONLINE, Presence.AWAY, Presence.OFFLINE


@pytest.mark.parametrize(
    ("presence", "reason", "changed_s", "lost_s", "now_s", "expected"),
    [
        # online, console dropped: away once the grace passed, not before
        (ONLINE, "agent", 0, 100, 159, None),
        (ONLINE, "agent", 0, 100, 160, AWAY),
        # and offline once the longer time passed
        (ONLINE, "agent", 0, 100, 1000, OFF),
        # set away by the drop itself: goes offline later, stays away until then
        (AWAY, "disconnected", 160, 100, 500, None),
        (AWAY, "disconnected", 160, 100, 1000, OFF),
        # away by their own choice, then the console closed: offline after the long time only
        (AWAY, "agent", 0, 100, 160, None),
        (AWAY, "agent", 0, 100, 1000, OFF),
        # set online after the console had closed (by themselves or a supervisor): that choice stands
        (ONLINE, "agent", 200, 100, 5000, None),
        (ONLINE, "supervisor", 200, 100, 5000, None),
        # away after a missed offer, console dropped later: offline after the long time
        (AWAY, "missed_offer", 50, 100, 1000, OFF),
        # offline stays offline; a connection never sets anyone online
        (OFF, "agent", 0, 100, 5000, None),
    ],
)
def test_presence_after_a_lost_connection(
    presence: Presence, reason: str, changed_s: int, lost_s: int, now_s: int, expected: Presence | None
) -> None:
    at = lambda s: T + timedelta(seconds=s)  # noqa: E731
    assert inferred(presence, reason, at(changed_s), at(lost_s), at(now_s), GRACE, OFFLINE) is expected
