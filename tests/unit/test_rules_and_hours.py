"""Queue rules (structured, never eval) and business hours across time zones and DST."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfoNotFoundError

import pytest

from services.router.domain.routing.hours import BusinessHours
from services.router.domain.routing.rules import InvalidRule, matches, validate

CONV = {
    "channel": "email",
    "tier": "gold",
    "language": "fr",
    "tags": ["billing", "vip"],
    "attributes": {"plan": "pro", "seats": 12},
}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({}, True),
        ({"attr": "channel", "eq": "email"}, True),
        ({"attr": "channel", "ne": "email"}, False),
        ({"attr": "tier", "in": ["gold", "platinum"]}, True),
        ({"attr": "tier", "not_in": ["gold"]}, False),
        ({"attr": "tags", "has": "billing"}, True),
        ({"attr": "tags", "has": "sales"}, False),
        ({"attr": "attributes.plan", "eq": "pro"}, True),
        ({"attr": "attributes.seats", "gte": 10}, True),
        ({"attr": "attributes.seats", "lte": 5}, False),
        ({"attr": "attributes.missing", "exists": False}, True),
        ({"attr": "language", "gte": 3}, False),  # incomparable: no match, no crash
        ({"all": [{"attr": "channel", "eq": "email"}, {"attr": "language", "eq": "fr"}]}, True),
        ({"any": [{"attr": "channel", "eq": "chat"}, {"attr": "language", "eq": "de"}]}, False),
        ({"not": {"attr": "channel", "eq": "chat"}}, True),
    ],
)
def test_rules_match_conversation_attributes(rule: dict, expected: bool) -> None:  # type: ignore[type-arg]
    validate(rule)
    assert matches(rule, CONV) is expected


@pytest.mark.parametrize(
    "rule",
    [
        {"attr": "channel"},
        {"attr": "channel", "eq": 1, "ne": 2},
        {"attr": "channel", "regex": ".*"},
        {"attr": "channel", "in": "email"},
        {"all": {"attr": "x", "eq": 1}},
        {"all": [], "any": []},
        {"not": {"attr": "x", "eq": 1}, "extra": 1},
        {"attr": 5, "eq": 1},
        "channel == 'email'",
    ],
)
def test_malformed_rules_are_refused_when_saved(rule: object) -> None:
    with pytest.raises(InvalidRule):
        validate(rule)  # type: ignore[arg-type]


def test_deeply_nested_rules_are_refused() -> None:
    rule: dict = {"attr": "x", "eq": 1}  # type: ignore[type-arg]
    for _ in range(12):
        rule = {"not": rule}
    with pytest.raises(InvalidRule):
        validate(rule)


def test_business_hours_follow_daylight_saving_time() -> None:
    hours = BusinessHours.parse("America/New_York", {"mon": ["09:00-17:00"], "sun": ["09:00-17:00"]})
    # 09:30 in New York is 14:30 UTC in winter (EST) and 13:30 UTC in summer (EDT)
    assert hours.is_open(datetime(2026, 1, 5, 14, 30, tzinfo=UTC))
    assert not hours.is_open(datetime(2026, 1, 5, 13, 30, tzinfo=UTC))
    assert hours.is_open(datetime(2026, 7, 6, 13, 30, tzinfo=UTC))
    # the Sunday DST starts (8 March 2026): opening at 09:00 EDT = 13:00 UTC
    assert hours.next_open(datetime(2026, 3, 8, 6, 0, tzinfo=UTC)) == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)


def test_business_hours_skip_holidays_and_refuse_nonsense() -> None:
    hours = BusinessHours.parse("Europe/Berlin", {"fri": ["09:00-12:00", "13:00-17:00"]}, holidays=["2026-12-25"])
    christmas = datetime(2026, 12, 25, 10, 0, tzinfo=UTC)
    assert not hours.is_open(christmas)
    assert hours.next_open(christmas) == datetime(2027, 1, 1, 8, 0, tzinfo=UTC)
    lunch = datetime(2026, 11, 27, 11, 30, tzinfo=UTC)  # 12:30 in Berlin, between the two spans
    assert not hours.is_open(lunch) and hours.next_open(lunch) == datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    with pytest.raises(ValueError):
        BusinessHours.parse("Europe/Berlin", {"mon": ["17:00-09:00"]})
    with pytest.raises(ZoneInfoNotFoundError):
        BusinessHours.parse("Mars/Olympus", {"mon": ["09:00-17:00"]})
