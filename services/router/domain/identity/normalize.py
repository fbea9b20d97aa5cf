"""Normalizing channel identities, so that the same person is the same key whatever channel wrote it:
E.164 phones (ITU-T E.164 via libphonenumber) and case-folded email addresses."""

from __future__ import annotations

import phonenumbers

from services.router.domain.errors import InvalidIdentity
from shared.events import IdentityKind

DEFAULT_REGION = "US"


def normalize_phone(value: str, region: str = DEFAULT_REGION) -> str:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentity(f"not a phone number: {exc}") from exc
    if not phonenumbers.is_possible_number(number):
        raise InvalidIdentity("not a possible phone number")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def normalize_email(value: str) -> str:
    address = value.strip()
    local, sep, domain = address.rpartition("@")
    if not sep or not local or not domain or " " in address:
        raise InvalidIdentity("not an email address")
    # Case-folding the local part too: support desks treat X@Example.com and x@example.com as one person.
    return f"{local.casefold()}@{domain.casefold()}"


def normalize_identity(kind: IdentityKind, value: str, region: str = DEFAULT_REGION) -> str:
    if kind is IdentityKind.PHONE:
        return normalize_phone(value, region)
    if kind is IdentityKind.EMAIL:
        return normalize_email(value)
    stripped = value.strip()
    if not stripped:
        raise InvalidIdentity("empty identity")
    return stripped


# Channel names people type for an identifier's kind ("whatsapp:+1415...", "telegram:12345").
_KIND_ALIASES: dict[str, IdentityKind] = {
    **{k.value: k for k in IdentityKind},
    "whatsapp": IdentityKind.PHONE,
    "sms": IdentityKind.PHONE,
    "voice": IdentityKind.PHONE,
    "tel": IdentityKind.PHONE,
    "mailto": IdentityKind.EMAIL,
    "messenger": IdentityKind.MESSENGER_PSID,
    "instagram": IdentityKind.INSTAGRAM_ID,
    "telegram": IdentityKind.TELEGRAM_ID,
    "chat": IdentityKind.CHAT_VISITOR,
    "in_app": IdentityKind.APP_USER,
    "app": IdentityKind.APP_USER,
}


def parse_identifier(text: str, region: str = DEFAULT_REGION) -> tuple[IdentityKind, str]:
    """An identifier as a person types it: ``x@example.com``, ``(415) 555-0100``, or ``channel:id``;
    normalized exactly as incoming identities are, so a search finds what the router stored."""
    text = text.strip()
    prefix, sep, rest = text.partition(":")
    if sep and prefix.lower() in _KIND_ALIASES and rest.strip():
        kind = _KIND_ALIASES[prefix.lower()]
        return kind, normalize_identity(kind, rest, region)
    if "@" in text:
        return IdentityKind.EMAIL, normalize_email(text)
    return IdentityKind.PHONE, normalize_phone(text, region)
