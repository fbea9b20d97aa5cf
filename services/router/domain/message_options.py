"""What a queue's automatic messages (the acknowledgement, the follow-up) are configured with alike, in its
routing configuration (``routing/queue_config.py``): the channels they go to and their texts per language.
Each check raises ``ValueError`` naming the option, which the configuration API answers with 422."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CHANNELS = frozenset({"email", "chat", "messenger", "instagram", "whatsapp", "telegram", "sms", "in_app", "voice"})


def channel_switches(config: Mapping[str, Any], option: str) -> dict[str, bool]:
    """``<option>.channels``: channel name → on or off (a channel not named is on)."""
    channels = config.get("channels") or {}
    if not isinstance(channels, Mapping) or not all(
        c in CHANNELS and isinstance(on, bool) for c, on in channels.items()
    ):
        raise ValueError(f"{option}.channels maps channel names to true or false")
    return dict(channels)


def texts_by_language(config: Mapping[str, Any], option: str) -> Mapping[Any, Any]:
    """``<option>.templates``, an object keyed by language; what each language holds is the message's own."""
    templates = config.get("templates") or {}
    if not isinstance(templates, Mapping):
        raise ValueError(f"{option}.templates maps languages to texts")
    return templates


def check_language(option: str, language: Any) -> None:
    """A key of ``<option>.templates``: an ISO 639-1 code (or a three-letter 639-2 one), lower case."""
    if not (isinstance(language, str) and 2 <= len(language) <= 3 and language.isalpha() and language.islower()):
        raise ValueError(f"{option}.templates: {language!r} is not a language code (ISO 639-1, lower case)")


def primary_language(tag: str | None) -> str:
    """A customer's language tag as the texts are keyed: its primary subtag, lower case ("de-AT", "de_AT" → "de")."""
    return (tag or "").replace("_", "-").split("-")[0].strip().lower()
