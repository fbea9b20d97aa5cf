"""Acknowledgements with a promise: the first thing a customer hears on a new conversation is that their message
arrived and when to expect an answer. Pure: the promise, whether to acknowledge at all, and the text.

The promise is the queue's first-response deadline (SLA target for the channel and the customer's tier,
``domain/sla.py``), counted in the queue's business hours, so it is the very deadline the SLA clock holds the
desk to; when the queue is busier than that (the current expected wait is longer than the target), the
expected wait counted the same way, so the desk never promises what its queue cannot keep. Outside hours the
customer is also told when the queue opens, in the queue's time zone.

A queue configures it in its routing configuration (``queue_config.py``), on by default:

    {"acknowledgement": {"enabled": true, "channels": {"chat": false},
                         "templates": {"en": {"by": "Got it. We will answer by {by}."}}}}

Never acknowledged: voice (a call has its own closed-hours prompt), a message no person wrote (an auto-reply,
bounce, bulk or list mail: RFC 3834 §2 forbids answering those automatically, and answering one can start a
mail loop), a channel the queue turned off."""

from __future__ import annotations

import math
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.router.domain.acknowledgement_templates import (
    FALLBACK_LANGUAGE,
    KINDS,
    PLACEHOLDERS,
    TEMPLATES,
    WORDS,
    Words,
)
from services.router.domain.message_options import (
    channel_switches,
    check_language,
    primary_language,
    texts_by_language,
)
from services.router.domain.routing.hours import BusinessHours

# Up to this far ahead (wall time) an open queue's promise is a duration ("within 15 minutes"); beyond it, a
# moment ("by Tuesday 24 November at 10:00"), which stays true however late the customer reads it.
RELATIVE_UP_TO = timedelta(hours=2)
# Channels no text acknowledgement goes to: a caller hears the closed-hours prompt instead (handlers/voice.py).
NOT_ACKNOWLEDGED = frozenset({"voice"})


@dataclass(frozen=True)
class Options:
    """A queue's acknowledgement options."""

    enabled: bool = True
    channels: Mapping[str, bool] = field(default_factory=dict)  # a channel not named is on
    templates: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # language → kind → text

    def text_for(self, language: str, kind: str) -> str:
        own = self.templates.get(language, {}).get(kind)
        return own if own is not None else TEMPLATES[language][kind]

    @property
    def languages(self) -> frozenset[str]:
        """Languages with every text (shipped, or the queue's own complete set)."""
        own = {lang for lang, texts in self.templates.items() if set(KINDS) <= set(texts)}
        return frozenset(TEMPLATES) | own


def options_of(config: Mapping[str, Any] | bool | None) -> Options:
    """``acknowledgement`` of a queue's routing configuration (``false``: off) → Options; ``ValueError`` saying
    what is wrong (the configuration API answers 422)."""
    if config is None or config is True:
        return Options()
    if config is False:
        return Options(enabled=False)
    if not isinstance(config, Mapping):
        raise ValueError("acknowledgement must be an object")
    unknown = set(config) - {"enabled", "channels", "templates"}
    if unknown:
        raise ValueError(f"acknowledgement: unknown option(s) {sorted(unknown)}")
    enabled = config.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ValueError("acknowledgement.enabled must be true or false")
    channels = channel_switches(config, "acknowledgement")
    templates = texts_by_language(config, "acknowledgement")
    for language, texts in templates.items():
        check_language("acknowledgement", language)
        if not isinstance(texts, Mapping):
            raise ValueError(f"acknowledgement.templates.{language} maps {', '.join(KINDS)} to texts")
        for kind, text in texts.items():
            _check_template(f"acknowledgement.templates.{language}.{kind}", kind, text)
    return Options(enabled, channels, {k: dict(v) for k, v in templates.items()})


def _check_template(where: str, kind: Any, text: Any) -> None:
    if kind not in PLACEHOLDERS:
        raise ValueError(f"{where}: the texts are {', '.join(KINDS)}")
    if not isinstance(text, str) or not text.strip() or len(text) > 2000:
        raise ValueError(f"{where}: a text of 1 to 2000 characters")
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
        text.format(**dict.fromkeys(PLACEHOLDERS[kind], ""))
    except (ValueError, IndexError, KeyError) as exc:
        raise ValueError(f"{where}: {exc}") from exc
    if not fields <= PLACEHOLDERS[kind]:
        raise ValueError(f"{where}: placeholders allowed are {sorted(PLACEHOLDERS[kind])}")


def skip_reason(channel: str, automated: str | None, options: Options) -> str | None:
    """Why this new conversation gets no acknowledgement; None if it gets one."""
    if channel in NOT_ACKNOWLEDGED:
        return "voice"
    if automated:
        return f"automated:{automated}"
    if not options.enabled:
        return "disabled"
    if not options.channels.get(channel, True):
        return "channel_off"
    return None


@dataclass(frozen=True, slots=True)
class Promise:
    """When the customer may expect an answer."""

    now: datetime
    due_at: datetime
    opens_at: datetime | None  # the queue is closed now and opens then
    timezone: str  # the queue's (UTC without hours)


def expected_wait_s(waiting: int, agents_online: int, handle_s: float | None) -> float | None:
    """The queue's expected wait, by the rule of thumb the live queue stats use: those waiting x average handle
    time / agents online. None when it cannot be told (nobody online, no handle time yet)."""
    if agents_online <= 0 or handle_s is None:
        return None
    return max(0, waiting) * handle_s / agents_online


def promise(now: datetime, target_s: float, hours: BusinessHours | None, wait_s: float | None = None) -> Promise:
    """The SLA's first-response deadline from now (in business hours), or the expected wait counted the same way
    if longer; outside hours, also when the queue opens."""
    seconds = max(target_s, wait_s or 0.0)
    if hours is None:
        return Promise(now, now + timedelta(seconds=seconds), None, "UTC")
    opens_at = None if hours.is_open(now) else hours.next_open(now)
    # past BusinessHours.add's horizon a span is counted in wall time: never promise before the SLA deadline
    due = max(hours.add(now, seconds), hours.add(now, target_s))
    return Promise(now, due, opens_at, hours.timezone)


def language_for(customer_language: str | None, options: Options) -> str:
    """The customer's language (its primary subtag: "de-AT" → "de") if the queue has texts in it, else English."""
    primary = primary_language(customer_language)
    return primary if primary in options.languages else FALLBACK_LANGUAGE


def text(p: Promise, language: str, options: Options | None = None) -> str:
    """The acknowledgement in ``language`` (one of ``options.languages``)."""
    options = options or Options()
    words = WORDS.get(language)
    due = moment(p.due_at, p.timezone, p.now, words)
    if p.opens_at is not None:
        opens = moment(p.opens_at, p.timezone, p.now, words)
        return options.text_for(language, "closed").format(opens=opens, by=due)
    ahead = p.due_at - p.now
    if ahead <= RELATIVE_UP_TO:
        return options.text_for(language, "within").format(within=duration(ahead, words))
    return options.text_for(language, "by").format(by=due)


def moment(when: datetime, timezone: str, now: datetime, words: Words | None) -> str:
    """A moment in the time zone, to the minute (rounded up: a promise is never earlier than the deadline)."""
    local = _ceil_minute(when).astimezone(BusinessHours(timezone, {}).zone)
    clock = f"{local:%H:%M}"
    if words is None:
        return f"{local:%Y-%m-%d} {clock} ({timezone})"
    same_year = local.year == now.astimezone(local.tzinfo).year
    return words.moment.format(
        weekday=words.weekdays[local.weekday()],
        day=local.day,
        month=words.months[local.month - 1],
        year="" if same_year else words.year.format(y=local.year),
        time=clock,
        zone=timezone,
    )


def duration(span: timedelta, words: Words | None) -> str:
    """Whole minutes, rounded up; whole hours when it is a number of hours."""
    minutes = max(1, math.ceil(span.total_seconds() / 60))
    w = words or WORDS[FALLBACK_LANGUAGE]
    if minutes >= 60 and minutes % 60 == 0:
        n, forms = minutes // 60, w.hours
    else:
        n, forms = minutes, w.minutes
    return forms[0] if n == 1 else forms[1].format(n=n)


def _ceil_minute(when: datetime) -> datetime:
    rest = timedelta(seconds=when.second, microseconds=when.microsecond)
    return when if not rest else when - rest + timedelta(minutes=1)
