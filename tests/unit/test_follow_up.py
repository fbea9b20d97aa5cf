"""The follow-up's options, due time and text (domain/follow_up.py), against values worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.router.domain import follow_up
from services.router.domain.routing.hours import BusinessHours

BERLIN_WEEKDAYS = BusinessHours.parse(
    "Europe/Berlin", {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}, ["2026-12-25"]
)


def test_off_unless_a_queue_turns_it_on() -> None:
    assert follow_up.options_of(None) is None
    assert follow_up.options_of(False) is None
    assert follow_up.options_of({"enabled": False, "after_s": 600}) is None
    assert follow_up.options_of(True) == follow_up.Options(after=timedelta(days=2))
    options = follow_up.options_of({"after_s": 3600, "channels": {"sms": False}, "templates": {"fr": "Réglé ?"}})
    assert options == follow_up.Options(timedelta(hours=1), {"sms": False}, {"fr": "Réglé ?"})


@pytest.mark.parametrize(
    "config",
    [
        "yes",
        {"after_s": 59},
        {"after_s": 30 * 86_400 + 1},
        {"after_s": True},
        {"after_s": "3600"},
        {"enabled": "no"},
        {"channels": {"fax": True}},
        {"channels": {"sms": "off"}},
        {"templates": {"EN": "hi"}},
        {"templates": {"english": "hi"}},
        {"templates": {"en": ""}},
        {"templates": {"en": "x" * 2001}},
        {"templates": ["en"]},
        {"every_s": 60},
    ],
)
def test_a_configuration_it_could_not_use_is_refused_saying_what_is_wrong(config: Any) -> None:
    with pytest.raises(ValueError, match="follow_up"):
        follow_up.options_of(config)


def test_due_after_the_resolution_and_at_the_next_opening_when_the_queue_is_closed_then() -> None:
    options = follow_up.Options(after=timedelta(days=2))
    monday_10_utc = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 11:00 in Berlin
    assert follow_up.due_at(monday_10_utc, options, None) == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert follow_up.due_at(monday_10_utc, options, BERLIN_WEEKDAYS) == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    thursday_17_utc = datetime(2026, 11, 26, 17, 0, tzinfo=UTC)  # 18:00 Berlin; + 2 days = Saturday
    assert follow_up.due_at(thursday_17_utc, options, BERLIN_WEEKDAYS) == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    # over Christmas (a holiday on Friday the 25th) and across no DST change: Monday 28th 09:00 Berlin
    wednesday = datetime(2026, 12, 23, 12, 0, tzinfo=UTC)
    assert follow_up.due_at(wednesday, options, BERLIN_WEEKDAYS) == datetime(2026, 12, 28, 8, 0, tzinfo=UTC)
    # the clocks go forward on Sunday 29 March 2026: Monday 09:00 Berlin is 07:00 UTC
    friday = datetime(2026, 3, 27, 16, 30, tzinfo=UTC)  # 17:30 CET, closed; + 2 days = Sunday
    assert follow_up.due_at(friday, options, BERLIN_WEEKDAYS) == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)


def test_the_text_is_in_the_customers_language_the_queues_own_first_else_english() -> None:
    shipped = follow_up.Options()
    assert shipped.language_for("de-AT") == "de" and shipped.text("de").startswith("Hallo noch einmal!")
    assert shipped.language_for("es_MX") == "es" and shipped.text("es").startswith("¡Hola de nuevo!")
    assert shipped.language_for("fr") == "en" and shipped.language_for(None) == "en"
    assert shipped.text("en").startswith("Hello again! We marked your request as solved.")
    own = follow_up.Options(templates={"fr": "Tout est-il réglé ?", "en": "All good?"})
    assert own.language_for("fr-CA") == "fr" and own.text("fr") == "Tout est-il réglé ?"
    assert own.text("en") == "All good?" and own.text("de") == shipped.text("de")


def test_never_to_voice_nor_a_channel_the_queue_turned_off() -> None:
    options = follow_up.Options(channels={"sms": False, "email": True})
    assert follow_up.skip_reason("voice", options) == "voice"
    assert follow_up.skip_reason("sms", options) == "channel_off"
    assert follow_up.skip_reason("email", options) is None
    assert follow_up.skip_reason("whatsapp", options) is None
