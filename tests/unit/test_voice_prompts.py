"""The closed-hours prompt a caller hears (domain/voice_prompts.py), against texts written out by hand."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.router.domain.voice_prompts import closed_prompt

# Monday 30 March 2026, 07:00 UTC: 09:00 in Berlin (the clocks went forward the day before), 08:00 in London
OPENS = datetime(2026, 3, 30, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("language", "zone", "text", "locale"),
    [
        (
            "en",
            "Europe/Berlin",
            "We are closed right now and open again on Monday 30 March at 09:00. "
            "Please leave a message after the tone.",
            "en-US",
        ),
        (
            "de-AT",
            "Europe/Berlin",
            "Wir sind gerade geschlossen und ab Montag, 30. März, 09:00 Uhr wieder für Sie da. "
            "Bitte hinterlassen Sie nach dem Signalton eine Nachricht.",
            "de-DE",
        ),
        (
            "es",
            "Europe/London",
            "Ahora mismo estamos cerrados y volvemos a abrir el lunes 30 de marzo a las 08:00. "
            "Deje un mensaje después de la señal.",
            "es-ES",
        ),
        (
            "fr",  # no French prompt: English, spoken by an English voice
            "Europe/Berlin",
            "We are closed right now and open again on Monday 30 March at 09:00. "
            "Please leave a message after the tone.",
            "en-US",
        ),
    ],
)
def test_the_opening_is_said_in_the_callers_language_and_the_queues_time_zone(
    language: str, zone: str, text: str, locale: str
) -> None:
    assert closed_prompt(language, OPENS, zone) == (text, locale)


def test_a_queue_that_never_opens_says_soon() -> None:
    assert closed_prompt(None, None, "UTC") == (
        "We are closed right now and open again soon. Please leave a message after the tone.",
        "en-US",
    )
    assert closed_prompt("es", None, "UTC")[0].startswith("Ahora mismo estamos cerrados y volvemos a abrir pronto.")
