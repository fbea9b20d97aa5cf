"""The webhook retry policy: doubling steps with equal jitter, capped, never past the retry window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.router.domain.webhook_retry import Outcome, RetryPolicy, outcome_of

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DAY = RetryPolicy(first=timedelta(seconds=1), cap=timedelta(hours=1), window=timedelta(hours=24))


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.DELIVERED),
        (204, Outcome.DELIVERED),
        (301, Outcome.DELIVERED),
        (None, Outcome.RETRY),
        (500, Outcome.RETRY),
        (503, Outcome.RETRY),
        (408, Outcome.RETRY),
        (429, Outcome.RETRY),
        (400, Outcome.REFUSED),
        (401, Outcome.REFUSED),
        (404, Outcome.REFUSED),
        (410, Outcome.REFUSED),
    ],
)
def test_a_receivers_answer_says_delivered_retry_or_refused(status: int | None, outcome: Outcome) -> None:
    assert outcome_of(status) is outcome


def test_steps_double_from_the_first_and_stop_at_the_cap() -> None:
    seconds = [DAY.step(n).total_seconds() for n in range(1, 15)]
    assert seconds == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3600, 3600]
    assert DAY.step(10_000) == timedelta(hours=1)


def test_the_jitter_draw_spans_half_to_all_of_the_step() -> None:
    now = T0 + timedelta(minutes=5)
    assert DAY.next_attempt(T0, 4, now, 0.0) == now + timedelta(seconds=4)
    assert DAY.next_attempt(T0, 4, now, 1.0) == now + timedelta(seconds=8)
    assert DAY.next_attempt(T0, 4, now, 0.5) == now + timedelta(seconds=6)


def test_no_attempt_is_scheduled_after_the_window() -> None:
    late = T0 + timedelta(hours=23, minutes=59)
    assert DAY.next_attempt(T0, 30, late, 0.0) is None  # half an hour's wait would end past 24 h
    assert DAY.next_attempt(T0, 1, late, 0.0) == late + timedelta(seconds=0.5)  # a short one still fits


def test_a_receiver_down_all_day_is_tried_about_forty_times_then_given_up() -> None:
    """Failing at every attempt: steps of 1 s doubling to the one-hour cap (about 2 h to get there), then
    hourly. With every draw at its longest the waits are 1+2+...+2048 s (about 68 min) then 3600 s each:
    12 doublings and 22 capped steps fit in 24 h; at its shortest, half of each: 0.5+...+1024 s then 1800 s
    each, 12 and 46."""
    for draw, expected in ((1.0, 1 + 12 + 22), (0.0, 1 + 12 + 46)):
        at, attempts = T0, 1
        while (nxt := DAY.next_attempt(T0, attempts, at, draw)) is not None:
            assert nxt - at <= timedelta(hours=1)
            at, attempts = nxt, attempts + 1
        assert at <= T0 + timedelta(hours=24)
        assert attempts == expected


@given(
    failed=st.integers(min_value=1, max_value=200),
    elapsed_s=st.floats(min_value=0, max_value=30 * 3600),
    draw=st.floats(min_value=0, max_value=1),
)
def test_every_scheduled_attempt_is_later_than_now_and_inside_the_window(
    failed: int, elapsed_s: float, draw: float
) -> None:
    now = T0 + timedelta(seconds=elapsed_s)
    nxt = DAY.next_attempt(T0, failed, now, draw)
    if nxt is None:
        assert now + DAY.step(failed) * (1 + draw) / 2 > T0 + DAY.window  # the drawn wait ends past it
    else:
        assert now < nxt <= T0 + DAY.window
        assert DAY.step(failed) / 2 <= nxt - now <= DAY.step(failed)


def test_a_policy_that_cannot_work_is_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(first=timedelta(seconds=10), cap=timedelta(seconds=1))
    with pytest.raises(ValueError):
        RetryPolicy(first=timedelta(0))
    with pytest.raises(ValueError):
        DAY.next_attempt(T0, 1, T0, 1.5)
