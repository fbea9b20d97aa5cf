"""When each simulated agent is at work: daily shifts in the desk's time zone (``"08:00-16:00"``; a shift
that ends before it starts runs past midnight, ``"22:00-06:00"``), per weekday if needed
(``{"mon": ["08:00-12:00", "13:00-17:00"], "sat": ["10:00-14:00"]}``), or a head count per hour
(``per_hour``: agent k of a group works the hours whose count is above k), which is what the staffing search
produces. Wall-clock times are taken in the zone, so a shift keeps its local hours across DST changes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.router.simulation.workload import HOUR, Window

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Span = tuple[float, float]  # epoch seconds [start, end)


@dataclass(frozen=True)
class Shifts:
    timezone: str
    week: Mapping[int, tuple[tuple[time, time], ...]]  # weekday (0 = Monday) → (from, to); to <= from: overnight

    def spans(self, window: Window) -> list[Span]:
        """The periods at work that overlap the run (the window and its drain), merged."""
        zone = ZoneInfo(self.timezone)
        first = datetime.fromtimestamp(window.start, UTC).astimezone(zone).date() - timedelta(days=1)
        last = datetime.fromtimestamp(window.stop, UTC).astimezone(zone).date()
        out: list[Span] = []
        day = first
        while day <= last:
            for begin, end in self.week.get(day.weekday(), ()):
                opens = datetime.combine(day, begin, tzinfo=zone).timestamp()
                closes_on = day + timedelta(days=1) if end <= begin else day
                closes = datetime.combine(closes_on, end, tzinfo=zone).timestamp()
                if closes > window.start and opens < window.stop:
                    out.append((max(opens, window.start), min(closes, window.stop)))
            day += timedelta(days=1)
        return merged(out)


def parse_shifts(raw: object, timezone: str, where: str) -> Shifts:
    """A list of daily spans, or a weekday → spans object. ``ValueError`` names ``where``."""
    ZoneInfo(timezone)  # an unknown zone fails here, with the desk's error
    if isinstance(raw, list):
        raw = dict.fromkeys(DAYS, raw)
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: a list of spans (every day) or an object of weekday → spans")
    week: dict[int, tuple[tuple[time, time], ...]] = {}
    for name, spans in raw.items():
        if name not in DAYS:
            raise ValueError(f"{where}: weekdays are {', '.join(DAYS)}, not {name!r}")
        if not isinstance(spans, list):
            raise ValueError(f'{where}.{name}: a list of spans like "08:00-16:00"')
        week[DAYS.index(name)] = tuple(_span(span, f"{where}.{name}") for span in spans)
    return Shifts(timezone, week)


def _span(text: object, where: str) -> tuple[time, time]:
    if not isinstance(text, str) or text.count("-") != 1:
        raise ValueError(f'{where}: a span is "HH:MM-HH:MM", not {text!r}')
    begin, end = (part.strip() for part in text.split("-"))
    try:
        opens = time.fromisoformat(begin)
        closes = time(0, 0) if end == "24:00" else time.fromisoformat(end)
    except ValueError:
        raise ValueError(f'{where}: a span is "HH:MM-HH:MM", not {text!r}') from None
    if opens == closes and end != "24:00" and begin != "00:00":
        raise ValueError(f"{where}: an empty span {text!r}")
    return opens, closes


def per_hour_spans(counts: Sequence[int], index: int, window: Window) -> list[Span]:
    """Agent ``index`` of a group works each hour whose head count is above ``index`` (the counts repeat
    after their last hour, through the drain too)."""
    hours = int(-(-(window.stop - window.start) // HOUR))
    spans = [
        (window.start + h * HOUR, min(window.stop, window.start + (h + 1) * HOUR))
        for h in range(hours)
        if counts[h % len(counts)] > index
    ]
    return merged(spans)


def merged(spans: Sequence[Span]) -> list[Span]:
    """Overlapping or touching spans as one: an agent whose shifts meet does not log off in between."""
    out: list[Span] = []
    for begin, end in sorted(spans):
        if out and begin <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((begin, end))
    return out
