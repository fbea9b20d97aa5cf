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
