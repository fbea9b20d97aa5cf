"""What a caller hears when the queue is closed: when it opens, in the queue's time zone, said in the caller's
language (the shipped ones; English otherwise), and that they can leave a message. Pure.

Written for the ear: the moment without a year or a time-zone name ("on Monday 30 March at 09:00"), which a
voice reads naturally; the acknowledgement's written form adds the zone (``acknowledgement.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from services.router.domain.acknowledgement_templates import WORDS
from services.router.domain.message_options import primary_language

FALLBACK_LANGUAGE = "en"
CLOSED: Final[dict[str, str]] = {
    "en": "We are closed right now and open again {when}. Please leave a message after the tone.",
    "de": "Wir sind gerade geschlossen und ab {when} wieder für Sie da. "
    "Bitte hinterlassen Sie nach dem Signalton eine Nachricht.",
    "es": "Ahora mismo estamos cerrados y volvemos a abrir {when}. Deje un mensaje después de la señal.",
}
SPOKEN_MOMENT: Final[dict[str, str]] = {
    "en": "on {weekday} {day} {month} at {time}",
    "de": "{weekday}, {day}. {month}, {time} Uhr",
    "es": "el {weekday} {day} de {month} a las {time}",
}
SOON: Final[dict[str, str]] = {"en": "soon", "de": "bald", "es": "pronto"}
# The voice a text-to-speech engine should use for each shipped language (BCP 47, as Twilio's <Say> takes it).
VOICE_LOCALE: Final[dict[str, str]] = {"en": "en-US", "de": "de-DE", "es": "es-ES"}


def language_of(customer_language: str | None) -> str:
    """The caller's language (its primary subtag: "de-AT" → "de") if prompts ship in it, else English."""
    primary = primary_language(customer_language)
    return primary if primary in CLOSED else FALLBACK_LANGUAGE


def closed_prompt(customer_language: str | None, opens_at: datetime | None, timezone: str) -> tuple[str, str]:
    """(the text, its voice locale) for a caller waiting in a closed queue."""
    language = language_of(customer_language)
    if opens_at is None:
        when = SOON[language]
    else:
        local = opens_at.astimezone(ZoneInfo(timezone))
        words = WORDS[language]
        when = SPOKEN_MOMENT[language].format(
            weekday=words.weekdays[local.weekday()],
            day=local.day,
            month=words.months[local.month - 1],
            time=f"{local:%H:%M}",
        )
    return CLOSED[language].format(when=when), VOICE_LOCALE[language]
