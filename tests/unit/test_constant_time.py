"""shared.constant_time.same: equality of str and bytes as UTF-8, never an error, whatever a client sent."""

from __future__ import annotations

import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.constant_time import same

ODD = ["ù", "日本", "sha256=ù", "sha256=zz", "zz", "", "f" * 10_240, "\ud800", "x\udfffy", "\x00"]


@pytest.mark.parametrize("value", ODD)
def test_odd_values_are_unequal_to_a_hex_digest_and_never_raise(value: str) -> None:
    digest = "0" * 64
    assert not same(digest, value) and not same(value, digest)
    assert not same(digest.encode(), value) and not same(value, digest.encode())


@pytest.mark.parametrize("value", ODD)
def test_every_value_equals_itself_as_str_and_as_utf8_bytes(value: str) -> None:
    as_bytes = value.encode("utf-8", "surrogatepass")
    assert same(value, value) and same(value, as_bytes) and same(as_bytes, value)


def test_where_compare_digest_raises_same_answers() -> None:
    with pytest.raises(TypeError):
        hmac.compare_digest("ù", "u")
    assert not same("ù", "u") and same("ù", "ù")


def test_lengths_prefixes_and_case_matter() -> None:
    assert not same("abc", "abcd") and not same("abcd", "abc")
    assert not same("abc", "ABC")
    assert same("", "") and same(b"", "")


@given(st.text(), st.text())
def test_same_is_equality_for_any_text(a: str, b: str) -> None:
    assert same(a, b) == (a == b)


@given(st.binary(), st.binary())
def test_same_is_equality_for_any_bytes(a: bytes, b: bytes) -> None:
    assert same(a, b) == (a == b)
