"""The language a customer writes in, from their message (py3langid: its model ships inside the wheel, nothing
is downloaded at run time). Only confident answers count: a greeting or "ok" says nothing."""

from __future__ import annotations

from functools import cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier

# The languages support desks commonly staff: fewer candidates, fewer confusions on short messages.
LANGUAGES = [
    "ar",
    "bg",
    "cs",
    "da",
    "de",
    "el",
    "en",
    "es",
    "et",
    "fi",
    "fr",
    "he",
    "hi",
    "hr",
    "hu",
    "id",
    "it",
    "ja",
    "ko",
    "lt",
    "lv",
    "nl",
    "no",
    "pl",
    "pt",
    "ro",
    "ru",
    "sk",
    "sl",
    "sr",
    "sv",
    "th",
    "tr",
    "uk",
    "vi",
    "zh",
]
MIN_LETTERS = 12
MIN_CONFIDENCE = 0.9


@cache
def _identifier() -> LanguageIdentifier:
    """One model per process (about 85 MB once loaded): classifying only reads it, so every router built in the
    process (the tests, the simulator) shares it."""
    identify = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identify.set_languages(LANGUAGES)
    return identify


class LanguageDetector:
    def __init__(self) -> None:
        self._identify = _identifier()

    def __call__(self, text: str) -> tuple[str, float] | None:
        """(language, confidence) if the text says so confidently, else None."""
        if sum(ch.isalpha() for ch in text) < MIN_LETTERS:
            return None
        language, confidence = self._identify.classify(text)
        return (str(language), float(confidence)) if confidence >= MIN_CONFIDENCE else None
