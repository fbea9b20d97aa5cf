"""SLA targets and deadlines in business hours (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.router.domain.routing.hours import BusinessHours
from services.router.domain.sla import TimerKind, deadlines, met, remaining_s, resumed, slot, target_s

PARIS = BusinessHours.parse(
    "Europe/Paris",
    {d: ["09:00-12:00", "13:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
    ["2026-12-25"],
)


def test_default_targets_follow_the_care_policy() -> None:
    assert target_s(TimerKind.FIRST_RESPONSE, "email", "standard") == 24 * 3600
    assert target_s(TimerKind.FIRST_RESPONSE, "chat", None) == 120
    assert target_s(TimerKind.FIRST_RESPONSE, "whatsapp", "standard") == 3600
    assert target_s(TimerKind.FIRST_RESPONSE, "sms", "standard") == 3600
    assert target_s(TimerKind.FIRST_RESPONSE, "in_app", "standard") == 15 * 60
    assert target_s(TimerKind.FIRST_RESPONSE, "email", "gold") == 12 * 3600  # tighter for loyal tiers


def test_queue_overrides_win_and_tiers_still_apply() -> None:
    overrides = {"first_response_s": {"email": 600, "default": 60}}
    assert target_s(TimerKind.FIRST_RESPONSE, "email", "standard", overrides) == 600
    assert target_s(TimerKind.FIRST_RESPONSE, "sms", "gold", overrides) == 30
    assert target_s(TimerKind.RESOLUTION, "email", "standard", overrides) == 72 * 3600


def test_a_deadline_skips_nights_weekends_lunch_and_holidays() -> None:
    friday_1630 = datetime(2026, 12, 18, 15, 30, tzinfo=UTC)  # 16:30 in Paris
    d = deadlines(friday_1630, 3600, 0.5, PARIS)
    # 30 min left on Friday; the rest on Monday at 09:00 Paris (08:00 UTC)
    assert d.warn_at == datetime(2026, 12, 18, 16, 0, tzinfo=UTC)
    assert d.due_at == datetime(2026, 12, 21, 8, 30, tzinfo=UTC)
    thursday_before_christmas = datetime(2026, 12, 24, 15, 0, tzinfo=UTC)  # 16:00 Paris, Christmas is closed
    assert deadlines(thursday_before_christmas, 7200, 0.8, PARIS).due_at == datetime(2026, 12, 28, 9, 0, tzinfo=UTC)


def test_without_hours_deadlines_are_wall_time() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    d = deadlines(start, 100, 0.8, None)
    assert (d.warn_at - start, d.due_at - start) == (timedelta(seconds=80), timedelta(seconds=100))


def test_a_paused_clock_resumes_with_what_it_had_left() -> None:
    start = datetime(2026, 12, 21, 8, 0, tzinfo=UTC)  # Monday 09:00 Paris
    d = deadlines(start, 4 * 3600, 0.75, PARIS)
    paused = start + timedelta(hours=1)
    left = remaining_s(paused, d.due_at, PARIS)
    assert left == 3 * 3600
    later = datetime(2026, 12, 22, 8, 0, tzinfo=UTC)  # Tuesday 09:00 Paris
    again = resumed(later, left, 4 * 3600, 0.75, PARIS)
    assert again.due_at == datetime(2026, 12, 22, 11, 0, tzinfo=UTC)  # 09:00-12:00 Paris is 3 h
    assert again.warn_at == datetime(2026, 12, 22, 10, 0, tzinfo=UTC)


@given(
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),
    seconds=st.floats(min_value=0, max_value=30 * 24 * 3600),
)
def test_between_inverts_add(start: datetime, seconds: float) -> None:
    due = PARIS.add(start, seconds)
    assert abs(PARIS.between(start, due) - seconds) < 1e-3
    assert due.astimezone(PARIS.zone).date() != date(2026, 12, 25) or seconds == 0


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("first_response", "response"), ("next_response", "response"), ("resolution", "resolution")],
)
def test_a_conversation_runs_one_response_and_one_resolution_promise(kind: str, expected: str) -> None:
    assert slot(kind) == expected


def test_a_stopped_clock_met_its_promise_when_answered_by_the_deadline_or_paused() -> None:
    due = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    assert met(due, False, due) is True  # answered at the deadline
    assert met(due, False, due - timedelta(seconds=1)) is True
    assert met(due, False, due + timedelta(seconds=1)) is False
    assert met(due, True, due + timedelta(hours=5)) is True  # paused on the customer: cannot break
