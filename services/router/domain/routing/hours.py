"""Business hours per queue: weekly opening windows in the queue's time zone (IANA, DST-aware through
zoneinfo) and holidays. Outside hours work waits and the customer is told when to expect an answer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# weekday (0 = Monday) → list of (open, close) local times; close > open, same day
Week = dict[int, list[tuple[time, time]]]


@dataclass(frozen=True)
class BusinessHours:
    timezone: str
    week: Week
    holidays: frozenset[date] = field(default_factory=frozenset)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_open(self, now: datetime) -> bool:
        local = now.astimezone(self.zone)
        if local.date() in self.holidays:
            return False
        return any(start <= local.time() < end for start, end in self.week.get(local.weekday(), []))

    def next_open(self, now: datetime) -> datetime | None:
        """When the queue opens next (now, if open); None if it never does within two weeks."""
        if self.is_open(now):
            return now
        zone = self.zone
        local = now.astimezone(zone)
        for days in range(0, 15):
            day = (local + timedelta(days=days)).date()
            if day in self.holidays:
                continue
            for start, _ in sorted(self.week.get(day.weekday(), [])):
                opening = datetime.combine(day, start, tzinfo=zone)
                if opening > now:
                    return opening
        return None

    @classmethod
    def parse(cls, timezone: str, week: dict[str, list[str]], holidays: list[str] | None = None) -> BusinessHours:
        """``{"mon": ["09:00-17:00"], "sat": ["10:00-14:00"]}`` style, as stored with a queue."""
        names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        parsed: Week = {}
        for name, spans in week.items():
            day = names.index(name.lower()[:3])
            for span in spans:
                start, _, end = span.partition("-")
                open_, close = time.fromisoformat(start.strip()), time.fromisoformat(end.strip())
                if close <= open_:
                    raise ValueError(f"closing time must follow opening time: {span}")
                parsed.setdefault(day, []).append((open_, close))
        ZoneInfo(timezone)  # refuse unknown zones early
        return cls(timezone, parsed, frozenset(date.fromisoformat(h) for h in holidays or []))

    def _windows(self, start: datetime, days: int = 400) -> Iterator[tuple[datetime, datetime]]:
        """Opening windows (aware, in UTC order) that end after ``start``, for up to ``days`` days."""
        zone = self.zone
        local = start.astimezone(zone)
        for offset in range(-1, days):
            day = (local + timedelta(days=offset)).date()
            if day in self.holidays:
                continue
            for open_, close in sorted(self.week.get(day.weekday(), [])):
                begin = datetime.combine(day, open_, tzinfo=zone)
                end = datetime.combine(day, close, tzinfo=zone)
                if end > start:
                    yield max(begin, start), end

    def add(self, start: datetime, seconds: float) -> datetime:
        """The moment ``seconds`` of opening time have passed since ``start`` (an SLA deadline in business
        hours). Past the horizon (no opening within 400 days) the deadline is simply wall time."""
        left = seconds
        for begin, end in self._windows(start):
            span = (end - begin).total_seconds()
            if left <= span:
                return begin + timedelta(seconds=left)
            left -= span
        return start + timedelta(seconds=seconds)

    def between(self, start: datetime, end: datetime) -> float:
        """Seconds of opening time between two moments (0 if ``end`` is not after ``start``)."""
        total = 0.0
        if end <= start:
            return total
        for begin, close in self._windows(start):
            if begin >= end:
                break
            total += (min(close, end) - begin).total_seconds()
        return total
