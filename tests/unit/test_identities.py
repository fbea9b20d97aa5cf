"""Identity normalization: the same person gives the same key whatever the channel wrote."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.router.domain.errors import InvalidIdentity
from services.router.domain.identity.normalize import (
    normalize_email,
    normalize_identity,
    normalize_phone,
    parse_identifier,
)
from shared.events import IdentityKind


@pytest.mark.parametrize(
    "raw", ["+1 415 555 0100", "(415) 555-0100", "415.555.0100", "+14155550100", "tel:+1-415-555-0100"]
)
def test_phone_spellings_normalize_to_one_e164(raw: str) -> None:
    assert normalize_phone(raw) == "+14155550100"


def test_international_numbers_keep_their_country() -> None:
    assert normalize_phone("+44 20 7946 0958") == "+442079460958"


def test_emails_are_case_folded_and_trimmed() -> None:
    assert normalize_email("  X@Example.COM ") == "x@example.com"


@pytest.mark.parametrize(
    ("normalize", "raw"),
    [
        *(pytest.param(normalize_phone, raw, id=f"not a number: {raw!r}") for raw in ["hello", "12", "+", ""]),
        *(
            pytest.param(normalize_email, raw, id=f"malformed email: {raw!r}")
            for raw in ["no-at-sign", "@example.com", "x@", "a b@example.com"]
        ),
    ],
)
def test_non_numbers_and_malformed_emails_are_refused(normalize: Callable[[str], str], raw: str) -> None:
    with pytest.raises(InvalidIdentity):
        normalize(raw)


@given(st.emails())
def test_email_normalization_is_idempotent(address: str) -> None:
    once = normalize_email(address)
    assert normalize_email(once) == once
    assert normalize_email(address.upper()) == once


def test_platform_ids_are_kept_verbatim_but_trimmed() -> None:
    assert normalize_identity(IdentityKind.APP_USER, " u-42 ") == "u-42"
    with pytest.raises(InvalidIdentity):
        normalize_identity(IdentityKind.TELEGRAM_ID, "   ")


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("X@Example.com", (IdentityKind.EMAIL, "x@example.com")),
        ("(415) 555-0100", (IdentityKind.PHONE, "+14155550100")),
        ("whatsapp:+1 415 555 0100", (IdentityKind.PHONE, "+14155550100")),
        ("telegram:123456", (IdentityKind.TELEGRAM_ID, "123456")),
        ("app_user:u-42", (IdentityKind.APP_USER, "u-42")),
        ("messenger:PSID-9", (IdentityKind.MESSENGER_PSID, "PSID-9")),
    ],
)
def test_typed_identifiers_parse_and_normalize_like_incoming_identities(
    typed: str, expected: tuple[IdentityKind, str]
) -> None:
    assert parse_identifier(typed) == expected


def test_an_unparseable_identifier_is_refused() -> None:
    with pytest.raises(InvalidIdentity):
        parse_identifier("hello there")
