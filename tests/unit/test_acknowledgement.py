"""Acknowledgements with a promise, the pure part: options, when not to acknowledge, the promised time (SLA
target, business hours, expected wait, DST), the language and the exact text. Expected times are worked out by
hand in the tests, not with the code under test."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.router.domain import acknowledgement as ack
from services.router.domain.errors import InvalidCommand
from services.router.domain.routing.hours import BusinessHours
from services.router.domain.routing.queue_config import check, queue_spec

BERLIN = BusinessHours.parse("Europe/Berlin", {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")})
NEW_YORK = BusinessHours.parse("America/New_York", {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")})
H, M = 3600.0, 60.0


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# -- options ------------------------------------------------------------------------------------------------


def test_acknowledgements_are_on_for_every_channel_by_default() -> None:
    options = ack.options_of(None)
    assert options.enabled and ack.skip_reason("email", None, options) is None
    assert queue_spec("q", "Q", frozenset(), True, 0, {}).acknowledgement is None
    assert ack.options_of(queue_spec("q", "Q", frozenset(), True, 0, {}).acknowledgement) == ack.Options()


def test_a_queue_turns_them_off_or_off_for_one_channel() -> None:
    assert ack.skip_reason("sms", None, ack.options_of(False)) == "disabled"
    assert ack.skip_reason("sms", None, ack.options_of({"enabled": False})) == "disabled"
    per_channel = ack.options_of({"channels": {"chat": False, "sms": True}})
    assert ack.skip_reason("chat", None, per_channel) == "channel_off"
    assert ack.skip_reason("sms", None, per_channel) is None
    assert ack.skip_reason("email", None, per_channel) is None


@pytest.mark.parametrize("kind", ["auto_replied", "bounce", "bulk", "list", "auto_generated"])
def test_a_message_no_person_wrote_is_never_acknowledged(kind: str) -> None:
    assert ack.skip_reason("email", kind, ack.Options()) == f"automated:{kind}"


def test_voice_gets_no_text_acknowledgement_whatever_the_queue_says() -> None:
    assert ack.skip_reason("voice", None, ack.options_of({"channels": {"voice": True}})) == "voice"


@pytest.mark.parametrize(
    "config",
    [
        {"enabled": "yes"},
        {"channels": {"pigeon": True}},
        {"channels": {"chat": "off"}},
        {"templates": {"english": {"by": "x {by}"}}},
        {"templates": {"en": {"later": "x"}}},
        {"templates": {"en": {"by": "answer by {when}"}}},
        {"templates": {"en": {"within": "{within"}}},
        {"templates": {"en": {"by": ""}}},
        {"templates": {"en": "hello"}},
        {"unknown": 1},
        ["enabled"],
    ],
)
def test_invalid_options_are_refused_when_the_queue_is_saved(config: Any) -> None:
    with pytest.raises(ValueError):
        ack.options_of(config)
    with pytest.raises(InvalidCommand, match="acknowledgement"):
        check({"acknowledgement": config})


def test_valid_options_pass_the_queue_check() -> None:
    check({"acknowledgement": {"enabled": True, "channels": {"chat": False}, "templates": {"de": {"by": "Bis {by}."}}}})


# -- the promise --------------------------------------------------------------------------------------------


def test_without_hours_the_promise_is_the_target_from_now_in_utc() -> None:
    now = utc(2026, 11, 23, 9, 20)
    p = ack.promise(now, 24 * H, None)
    assert (p.due_at, p.opens_at, p.timezone) == (utc(2026, 11, 24, 9, 20), None, "UTC")


def test_inside_hours_the_target_counts_opening_time_only_across_the_spring_dst_change() -> None:
    # Wednesday 25 March 2026 10:30 CET (09:30 UTC); 24 business hours: 6.5 h Wed, 8 h Thu, 8 h Fri, then 1.5 h
    # on Monday 30 March, which is CEST since the 29th: 10:30 local = 08:30 UTC
    p = ack.promise(utc(2026, 3, 25, 9, 30), 24 * H, BERLIN)
    assert p.opens_at is None
    assert p.due_at == utc(2026, 3, 30, 8, 30)


def test_outside_hours_the_customer_is_told_when_the_queue_opens_after_the_dst_change() -> None:
    # Saturday 28 March 2026, 13:00 CET. Opens Monday 30 March 09:00 CEST = 07:00 UTC (08:00 UTC had it stayed CET)
    p = ack.promise(utc(2026, 3, 28, 12), 24 * H, BERLIN)
    assert p.opens_at == utc(2026, 3, 30, 7)
    assert p.due_at == utc(2026, 4, 1, 15)  # Mon, Tue, Wed 8 h each: Wednesday 17:00 CEST


def test_outside_hours_across_the_us_dst_change() -> None:
    # Friday 6 March 2026, 18:00 EST (23:00 UTC); DST starts Sunday 8 March: Monday 09:00 EDT = 13:00 UTC
    p = ack.promise(utc(2026, 3, 6, 23), 1 * H, NEW_YORK)
    assert (p.opens_at, p.due_at) == (utc(2026, 3, 9, 13), utc(2026, 3, 9, 14))


def test_autumn_dst_change_moves_the_opening_an_hour_later_in_utc() -> None:
    # Saturday 24 October 2026 in Berlin (CEST); back to CET on the 25th: Monday 09:00 CET = 08:00 UTC
    p = ack.promise(utc(2026, 10, 24, 12), 2 * M, BERLIN)
    assert p.opens_at == utc(2026, 10, 26, 8)


def test_a_longer_expected_wait_than_the_target_is_what_is_promised() -> None:
    now = utc(2026, 3, 25, 9, 30)  # 10:30 CET, open
    assert ack.promise(now, 2 * M, BERLIN, wait_s=45 * M).due_at == utc(2026, 3, 25, 10, 15)
    assert ack.promise(now, 2 * M, BERLIN, wait_s=30.0).due_at == utc(2026, 3, 25, 9, 32)
    assert ack.promise(now, 2 * M, BERLIN, wait_s=None).due_at == utc(2026, 3, 25, 9, 32)


def test_a_wait_running_past_closing_continues_the_next_opening_day() -> None:
    now = utc(2026, 3, 25, 15, 30)  # 16:30 CET: 30 min of opening left today
    assert ack.promise(now, 15 * M, BERLIN, wait_s=2 * H).due_at == utc(2026, 3, 26, 9, 30)  # Thu 10:30 CET


@pytest.mark.parametrize(
    ("waiting", "online", "handle_s", "expected"),
    [(4, 2, 300.0, 600.0), (1, 1, 90.0, 90.0), (3, 0, 300.0, None), (3, 2, None, None), (0, 2, 300.0, 0.0)],
)
def test_expected_wait_is_waiting_times_handle_time_over_agents_online(
    waiting: int, online: int, handle_s: float | None, expected: float | None
) -> None:
    assert ack.expected_wait_s(waiting, online, handle_s) == expected


# -- language and text --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("customer", "language"),
    [
        ("de", "de"),
        ("de-AT", "de"),
        ("DE", "de"),
        ("es_MX", "es"),
        ("en-GB", "en"),
        ("fr", "en"),
        (None, "en"),
        ("", "en"),
    ],
)
def test_the_customers_language_when_shipped_else_english(customer: str | None, language: str) -> None:
    assert ack.language_for(customer, ack.Options()) == language


def test_a_queue_may_add_a_language_with_its_own_complete_set_of_texts() -> None:
    fr = {"within": "Réponse sous {within}.", "by": "Réponse avant {by}.", "closed": "Fermé, ouverture {opens}, {by}."}
    options = ack.options_of({"templates": {"fr": fr, "it": {"by": "Entro {by}."}}})
    assert ack.language_for("fr-CA", options) == "fr"
    assert ack.language_for("it", options) == "en", "an incomplete set falls back"
    p = ack.promise(utc(2026, 3, 28, 12), 24 * H, BERLIN)
    assert (
        ack.text(p, "fr", options)
        == "Fermé, ouverture 2026-03-30 09:00 (Europe/Berlin), 2026-04-01 17:00 (Europe/Berlin)."
    )


NOW_OPEN = utc(2026, 3, 25, 9, 30)  # Wednesday 10:30 in Berlin
NOW_CLOSED = utc(2026, 3, 28, 12)  # Saturday 13:00 in Berlin


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "Thank you for your message. We have received it and will get back to you within 2 minutes."),
        ("de", "Vielen Dank für Ihre Nachricht. Wir haben sie erhalten und melden uns innerhalb von 2 Minuten."),
        ("es", "Gracias por su mensaje. Lo hemos recibido y le responderemos en un plazo de 2 minutos."),
    ],
)
def test_a_short_promise_is_a_duration(language: str, expected: str) -> None:
    assert ack.text(ack.promise(NOW_OPEN, 2 * M, BERLIN), language) == expected


@pytest.mark.parametrize(
    ("language", "when_open", "when_closed"),
    [
        (
            "en",
            "Thank you for your message. We have received it and will get back to you by "
            "Monday 30 March at 10:30 (Europe/Berlin).",
            "Thank you for your message. We are closed right now and open again on Monday 30 March at 09:00 "
            "(Europe/Berlin). We will get back to you by Wednesday 1 April at 17:00 (Europe/Berlin).",
        ),
        (
            "de",
            "Vielen Dank für Ihre Nachricht. Wir haben sie erhalten und melden uns bis "
            "Montag, 30. März um 10:30 Uhr (Europe/Berlin).",
            "Vielen Dank für Ihre Nachricht. Wir sind gerade nicht erreichbar und wieder da am Montag, 30. März um "
            "09:00 Uhr (Europe/Berlin). Wir melden uns bis Mittwoch, 1. April um 17:00 Uhr (Europe/Berlin).",
        ),
        (
            "es",
            "Gracias por su mensaje. Lo hemos recibido y le responderemos antes del "
            "lunes 30 de marzo a las 10:30 (Europe/Berlin).",
            "Gracias por su mensaje. Ahora mismo estamos cerrados y volvemos a abrir el lunes 30 de marzo a las "
            "09:00 (Europe/Berlin). Le responderemos antes del miércoles 1 de abril a las 17:00 (Europe/Berlin).",
        ),
    ],
)
def test_a_long_promise_is_a_moment_in_the_queues_time_zone_and_outside_hours_the_text_names_the_opening(
    language: str, when_open: str, when_closed: str
) -> None:
    texts = [ack.text(ack.promise(now, 24 * H, BERLIN), language) for now in (NOW_OPEN, NOW_CLOSED)]
    assert texts == [when_open, when_closed]


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (30, "1 minute"),
        (60, "1 minute"),
        (61, "2 minutes"),
        (15 * M, "15 minutes"),
        (H, "1 hour"),
        (90 * M, "90 minutes"),
        (2 * H, "2 hours"),
    ],
)
def test_durations_round_up_to_whole_minutes_and_say_hours_when_whole(seconds: float, words: str) -> None:
    p = ack.promise(utc(2026, 3, 25, 9, 30), seconds, None)
    assert ack.text(p, "en").endswith(f"within {words}.")


def test_a_promise_is_rounded_up_to_the_minute_never_earlier() -> None:
    now = utc(2026, 3, 25, 9, 30, 20)
    p = ack.promise(now, 24 * H, None)  # 09:30:20 the next day
    assert "Thursday 26 March at 09:31 (UTC)" in ack.text(p, "en")


def test_a_moment_in_another_year_names_the_year() -> None:
    p = ack.promise(utc(2026, 12, 31, 12), 24 * H, None)
    assert ack.text(p, "en").endswith("by Friday 1 January 2027 at 12:00 (UTC).")
    assert ack.text(p, "es").endswith("antes del viernes 1 de enero de 2027 a las 12:00 (UTC).")
    assert ack.text(p, "de").endswith("bis Freitag, 1. Januar 2027 um 12:00 Uhr (UTC).")


def test_a_queues_own_text_replaces_the_shipped_one() -> None:
    options = ack.options_of({"templates": {"de": {"within": "Danke! Antwort in {within}."}}})
    assert ack.text(ack.promise(NOW_OPEN, 15 * M, BERLIN), "de", options) == "Danke! Antwort in 15 Minuten."
    assert ack.text(ack.promise(NOW_OPEN, 15 * M, BERLIN), "en", options).startswith("Thank you")


# -- properties ---------------------------------------------------------------------------------------------

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC", "America/Santiago"]


@st.composite
def business_hours(draw: st.DrawFn) -> BusinessHours:
    zone = draw(st.sampled_from(ZONES))
    days = draw(st.sets(st.integers(0, 6), min_size=1))
    week = {}
    for day in days:
        start = draw(st.integers(0, 22))
        end = draw(st.integers(start + 1, 23))
        week[day] = [(time(start), time(end, 59 if end == 23 else 0))]
    return BusinessHours(zone, week)


@settings(max_examples=300, deadline=None)
@given(
    hours=st.none() | business_hours(),
    now=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),
    target=st.sampled_from([2 * M, 15 * M, H, 24 * H]).map(float),
    wait=st.none() | st.floats(0, 3 * 24 * H),
    language=st.sampled_from(["en", "de", "es"]),
)
def test_the_promise_is_never_before_the_sla_deadline_and_outside_hours_names_the_next_opening(
    hours: BusinessHours | None, now: datetime, target: float, wait: float | None, language: str
) -> None:
    p = ack.promise(now, target, hours, wait)
    seconds = max(target, wait or 0.0)
    sla_deadline = hours.add(now, target) if hours else now + timedelta(seconds=target)
    assert p.due_at >= sla_deadline >= now
    assert p.due_at == (max(hours.add(now, seconds), sla_deadline) if hours else now + timedelta(seconds=seconds)), (
        "the expected wait counted like the SLA deadline"
    )
    if hours is None or hours.is_open(now):
        assert p.opens_at is None
    else:
        assert p.opens_at is not None and p.opens_at > now and hours.is_open(p.opens_at)
        assert not hours.is_open(p.opens_at - timedelta(minutes=1)) or p.opens_at.astimezone(hours.zone).time() == time(
            0
        )
        assert p.due_at >= p.opens_at
    words = ack.text(p, language)
    assert "{" not in words and "}" not in words
    assert (
        ("(" + (hours.timezone if hours else "UTC") + ")") in words
        or "within" in words
        or "plazo" in words
        or "innerhalb" in words
    )
