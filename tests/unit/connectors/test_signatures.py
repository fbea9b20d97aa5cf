"""Webhook signatures: ours agree with the providers' own definitions (Twilio's official validator)."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from services.connectors.signatures import (
    email_webhook_valid,
    meta_valid,
    telegram_valid,
    twilio_signature,
    twilio_valid,
)

TOKEN = "12345678901234567890123456789012"


def test_meta_signature_over_the_raw_body() -> None:
    body = b'{"object":"page","entry":[]}'
    good = "sha256=" + hmac.new(b"app-secret", body, hashlib.sha256).hexdigest()
    assert meta_valid("app-secret", body, good)
    assert not meta_valid("app-secret", body + b" ", good), "tampered body"
    assert not meta_valid("other-secret", body, good)
    assert not meta_valid("app-secret", body, None)
    assert not meta_valid("app-secret", body, good.replace("sha256=", "sha1="))


params = st.lists(
    st.tuples(st.text("abcdefXYZ_0123", min_size=1, max_size=8), st.text(max_size=20)),
    max_size=6,
    unique_by=lambda kv: kv[0],
)


@given(params)
def test_twilio_signature_matches_the_official_request_validator(pairs: list[tuple[str, str]]) -> None:
    url = "https://hooks.example.com/webhooks/twilio/sms?tenant=demo"
    official = RequestValidator(TOKEN).compute_signature(url, dict(pairs))
    assert twilio_signature(TOKEN, url, pairs) == official
    assert twilio_valid(TOKEN, url, pairs, official)
    assert RequestValidator(TOKEN).validate(url, dict(pairs), twilio_signature(TOKEN, url, pairs))


def test_twilio_rejects_wrong_url_params_or_token() -> None:
    pairs = [("Body", "hi"), ("From", "+14155550100")]
    sig = RequestValidator(TOKEN).compute_signature("https://h.example/webhooks/twilio/sms", dict(pairs))
    assert twilio_valid(TOKEN, "https://h.example/webhooks/twilio/sms", pairs, sig)
    assert not twilio_valid(TOKEN, "https://evil.example/webhooks/twilio/sms", pairs, sig)
    assert not twilio_valid(TOKEN, "https://h.example/webhooks/twilio/sms", [("Body", "hi!"), pairs[1]], sig)
    assert not twilio_valid("x" * 32, "https://h.example/webhooks/twilio/sms", pairs, sig)
    assert not twilio_valid(TOKEN, "https://h.example/webhooks/twilio/sms", pairs, None)


def test_telegram_secret_token_is_compared_exactly() -> None:
    assert telegram_valid("s3cret_-token", "s3cret_-token")
    assert not telegram_valid("s3cret_-token", "s3cret_-tokeN")
    assert not telegram_valid("s3cret_-token", None)


def test_email_webhook_signature() -> None:
    sig = hmac.new(b"key", b"1700000000" + b"tok", hashlib.sha256).hexdigest()
    assert email_webhook_valid("key", "1700000000", "tok", sig)
    assert not email_webhook_valid("key", "1700000001", "tok", sig)
