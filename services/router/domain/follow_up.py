"""Follow-up after a resolution: some time after an agent resolves a conversation, the customer is asked whether
everything is solved ("is everything working for you now? just reply if not"). Their reply reopens the
conversation (``followed_up_at`` counts as a resolution for the reopen window), so nobody has to start over.
Pure: the options, when the check-in is due, and its text.

Off unless the queue turns it on in its routing configuration (``queue_config.py``):

    {"follow_up": {"after_s": 172800, "channels": {"sms": false},
                   "templates": {"fr": "Tout est-il réglé ? Répondez à ce message si ce n'est pas le cas."}}}

``true`` turns it on with the defaults (two days after the resolution, every channel, the shipped texts).
A queue with business hours checks in when it is open (a customer answering "no" at 3 a.m. finds nobody), so
the check-in waits for the next opening. Never sent: to voice (a call back is a different promise), to a
channel the customer withdrew consent for (``consent.py``), or when the customer has written again since.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.router.domain.message_options import (
    channel_switches,
    check_language,
    primary_language,
    texts_by_language,
)
from services.router.domain.routing.hours import BusinessHours

DEFAULT_AFTER = timedelta(days=2)
# A check-in later than this after the resolution is no longer a follow-up of it.
LONGEST_AFTER = timedelta(days=30)
NOT_FOLLOWED_UP = frozenset({"voice"})
FALLBACK_LANGUAGE = "en"
TEXTS: Mapping[str, str] = {
    "en": (
        "Hello again! We marked your request as solved. Is everything working for you now? "
        "If not, just reply to this message and we will pick it up."
    ),
    "de": (
        "Hallo noch einmal! Wir haben Ihre Anfrage als gelöst markiert. Ist jetzt alles in Ordnung? "
        "Falls nicht, antworten Sie einfach auf diese Nachricht, und wir kümmern uns darum."
    ),
    "es": (
        "¡Hola de nuevo! Marcamos su solicitud como resuelta. ¿Está todo solucionado? "
        "Si no, responda a este mensaje y lo retomaremos."
    ),
}


@dataclass(frozen=True)
class Options:
    """A queue's follow-up options."""

    after: timedelta = DEFAULT_AFTER
    channels: Mapping[str, bool] = field(default_factory=dict)  # a channel not named is on
    templates: Mapping[str, str] = field(default_factory=dict)  # language → text

    def language_for(self, customer_language: str | None) -> str:
        """The customer's language (its primary subtag: "de-AT" → "de") if there is a text in it, else English."""
        primary = primary_language(customer_language)
        return primary if primary in self.templates or primary in TEXTS else FALLBACK_LANGUAGE

    def text(self, language: str) -> str:
        own = self.templates.get(language)
        return own if own is not None else TEXTS.get(language, TEXTS[FALLBACK_LANGUAGE])


def options_of(config: Mapping[str, Any] | bool | None) -> Options | None:
    """``follow_up`` of a queue's routing configuration → Options, or None when off (absent or ``false``);
    ``ValueError`` saying what is wrong (the configuration API answers 422)."""
    if config is None or config is False:
        return None
    if config is True:
        return Options()
    if not isinstance(config, Mapping):
        raise ValueError("follow_up must be true, false or an object")
    unknown = set(config) - {"enabled", "after_s", "channels", "templates"}
    if unknown:
        raise ValueError(f"follow_up: unknown option(s) {sorted(unknown)}")
    enabled = config.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ValueError("follow_up.enabled must be true or false")
    if not enabled:
        return None
    after_s = config.get("after_s", DEFAULT_AFTER.total_seconds())
    if isinstance(after_s, bool) or not isinstance(after_s, int | float):
        raise ValueError("follow_up.after_s is a number of seconds")
    if not 60 <= after_s <= LONGEST_AFTER.total_seconds():
        raise ValueError(f"follow_up.after_s is between 60 and {int(LONGEST_AFTER.total_seconds())} seconds")
    channels = channel_switches(config, "follow_up")
    templates = texts_by_language(config, "follow_up")
    for language, text in templates.items():
        check_language("follow_up", language)
        if not isinstance(text, str) or not text.strip() or len(text) > 2000:
            raise ValueError(f"follow_up.templates.{language}: a text of 1 to 2000 characters")
    return Options(timedelta(seconds=float(after_s)), channels, dict(templates))


def due_at(resolved_at: datetime, options: Options, hours: BusinessHours | None) -> datetime:
    """When to check in: ``after`` the resolution, moved to the queue's next opening if it is closed then."""
    due = resolved_at + options.after
    if hours is None:
        return due
    return hours.next_open(due) or due


def skip_reason(channel: str, options: Options) -> str | None:
    """Why this conversation gets no follow-up on ``channel``; None if it gets one."""
    if channel in NOT_FOLLOWED_UP:
        return "voice"
    if not options.channels.get(channel, True):
        return "channel_off"
    return None
