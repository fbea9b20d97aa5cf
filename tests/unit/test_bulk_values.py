"""What a value goes through on its way into a set-based write (services/router/adapters/db/bulk.py): the
column type's own conversion, resolved once per column. Times are stored as aware UTC (a naive one is refused,
one in another zone converted), JSON travels as text and other values as they are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.router.adapters.db import tables as t
from services.router.adapters.db.bulk import _bound

PARIS_SUMMER = timezone(timedelta(hours=2))


def test_a_utc_time_passes_as_it_is_and_another_zone_becomes_utc() -> None:
    now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    assert _bound(t.conversations, "opened_at", now) is now
    there = datetime(2026, 7, 1, 11, 0, tzinfo=PARIS_SUMMER)
    bound = _bound(t.conversations, "opened_at", there)
    assert bound == datetime(2026, 7, 1, 9, 0, tzinfo=UTC) and bound.utcoffset() == timedelta(0)
    assert _bound(t.conversations, "resolved_at", None) is None


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        _bound(t.conversations, "opened_at", datetime(2026, 12, 2, 9, 0))


def test_json_travels_as_text_and_other_values_as_they_are() -> None:
    assert _bound(t.conversations, "routing", {"queue": "q1", "n": 2}) == '{"queue":"q1","n":2}'
    assert _bound(t.conversations, "routing", None) == "null"
    assert _bound(t.conversations, "channel", "email") == "email"
    assert _bound(t.conversations, "response_target_s", 30.0) == 30.0
