"""The acknowledgement texts the desk ships, per language, and the words its promised times are written with.

Three texts per language, chosen by ``domain/acknowledgement.py``:
- ``within``: the queue is open and the answer is due soon: ``{within}`` is a duration ("15 minutes");
- ``by``: the answer is due later: ``{by}`` is a moment in the queue's time zone;
- ``closed``: the queue is closed: ``{opens}`` is when it opens, ``{by}`` when the answer is due.

A queue may replace any of them (``acknowledgement.templates`` in its routing configuration) with the same
placeholders. A language the desk ships no words for has its moments written as ISO 8601 dates."""

from __future__ import annotations

from typing import Final

KINDS: Final = ("within", "by", "closed")
PLACEHOLDERS: Final[dict[str, frozenset[str]]] = {
    "within": frozenset({"within"}),
    "by": frozenset({"by"}),
    "closed": frozenset({"opens", "by"}),
}
FALLBACK_LANGUAGE: Final = "en"

TEMPLATES: Final[dict[str, dict[str, str]]] = {
    "en": {
        "within": "Thank you for your message. We have received it and will get back to you within {within}.",
        "by": "Thank you for your message. We have received it and will get back to you by {by}.",
        "closed": (
            "Thank you for your message. We are closed right now and open again on {opens}. "
            "We will get back to you by {by}."
        ),
    },
    "de": {
        "within": "Vielen Dank für Ihre Nachricht. Wir haben sie erhalten und melden uns innerhalb von {within}.",
        "by": "Vielen Dank für Ihre Nachricht. Wir haben sie erhalten und melden uns bis {by}.",
        "closed": (
            "Vielen Dank für Ihre Nachricht. Wir sind gerade nicht erreichbar und wieder da am {opens}. "
            "Wir melden uns bis {by}."
        ),
    },
    "es": {
        "within": "Gracias por su mensaje. Lo hemos recibido y le responderemos en un plazo de {within}.",
        "by": "Gracias por su mensaje. Lo hemos recibido y le responderemos antes del {by}.",
        "closed": (
            "Gracias por su mensaje. Ahora mismo estamos cerrados y volvemos a abrir el {opens}. "
            "Le responderemos antes del {by}."
        ),
    },
}


class Words:
    """How one language writes a moment and a duration."""

    def __init__(
        self,
        weekdays: tuple[str, ...],
        months: tuple[str, ...],
        moment: str,
        minutes: tuple[str, str],
        hours: tuple[str, str],
        year: str = " {y}",
    ) -> None:
        self.weekdays = weekdays  # Monday first
        self.months = months  # January first
        self.moment = moment  # placeholders: weekday, day, month, year (may be empty), time, zone
        self.minutes = minutes  # singular, plural (with {n})
        self.hours = hours
        self.year = year  # how a year is added to a date outside the current one


WORDS: Final[dict[str, Words]] = {
    "en": Words(
        ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        (
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ),
        "{weekday} {day} {month}{year} at {time} ({zone})",
        ("1 minute", "{n} minutes"),
        ("1 hour", "{n} hours"),
    ),
    "de": Words(
        ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
        (
            "Januar",
            "Februar",
            "März",
            "April",
            "Mai",
            "Juni",
            "Juli",
            "August",
            "September",
            "Oktober",
            "November",
            "Dezember",
        ),
        "{weekday}, {day}. {month}{year} um {time} Uhr ({zone})",
        ("1 Minute", "{n} Minuten"),
        ("1 Stunde", "{n} Stunden"),
    ),
    "es": Words(
        ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
        (
            "enero",
            "febrero",
            "marzo",
            "abril",
            "mayo",
            "junio",
            "julio",
            "agosto",
            "septiembre",
            "octubre",
            "noviembre",
            "diciembre",
        ),
        "{weekday} {day} de {month}{year} a las {time} ({zone})",
        ("1 minuto", "{n} minutos"),
        ("1 hora", "{n} horas"),
        " de {y}",
    ),
}
