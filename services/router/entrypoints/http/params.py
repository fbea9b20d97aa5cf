"""Typed request values shared by routes: what every store can hold, refused with 422 naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator

from shared.events import as_utc, plausible, utcnow

# Times a query can ask about: wide, but each one convertible to UTC with room for a week's arithmetic
# around it (year 1 with a positive offset, or year 9999 with a negative one, are not).
QUERY_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
QUERY_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _no_nul(value: str) -> str:
    """Identifiers are refused, not cleaned, when they hold U+0000: a changed identifier would be another
    customer, and the app that sent it can fix it. (Human text is cleaned instead: see shared/events.sanitize.)"""
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (U+0000)")
    return value


def _plausible(value: datetime | None) -> datetime | None:
    """A timestamp the stores can hold and that makes sense for a message: since 2000, at most a day ahead."""
    if value is not None and not plausible(value, utcnow()):
        raise ValueError("must be an instant between 2000-01-01 and one day from now")
    return value


def _schedulable(value: datetime | None) -> datetime | None:
    """A time to do something at (a callback window): since 2000, at most a year ahead."""
    if value is not None and not plausible(value, utcnow() + timedelta(days=365)):
        raise ValueError("must be an instant between 2000-01-01 and one year from now")
    return value


def _queryable(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    utc = as_utc(value)
    if utc is None:
        raise ValueError("has no UTC instant (give a time between 1970 and 9000)")
    if not QUERY_EARLIEST <= utc <= QUERY_LATEST:
        raise ValueError("must be between 1970-01-01 and 9000-01-01")
    return value


Identifier = Annotated[str, AfterValidator(_no_nul)]
MessageInstant = Annotated[datetime | None, AfterValidator(_plausible)]
ScheduleInstant = Annotated[datetime | None, AfterValidator(_schedulable)]
QueryInstant = Annotated[datetime | None, AfterValidator(_queryable)]
