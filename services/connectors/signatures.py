"""Webhook signature checks, each as its provider documents it. Constant-time comparisons of bytes throughout
(shared/constant_time.py), so any header value, however odd, is a mismatch and never an error."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

from shared.constant_time import same


def meta_valid(app_secret: str, raw_body: bytes, header: str | None) -> bool:
    """Meta X-Hub-Signature-256: ``sha256=`` + hex HMAC-SHA256 of the raw body keyed with the app secret."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return same(expected, header.removeprefix("sha256=").lower())


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Twilio X-Twilio-Signature: base64 HMAC-SHA1 of the full URL followed by every POST parameter's name
    and value, sorted by name (values of a repeated name in the order sent)."""
    data = url + "".join(k + v for k, v in sorted(params, key=lambda kv: kv[0]))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def twilio_valid(auth_token: str, url: str, params: Iterable[tuple[str, str]], header: str | None) -> bool:
    if not header:
        return False
    params = list(params)
    candidates = {url}
    # Twilio signs the URL as configured; ports are sometimes added or dropped by proxies.
    if url.startswith("https://") and ":443/" in url:
        candidates.add(url.replace(":443/", "/", 1))
    return any(same(twilio_signature(auth_token, u, params), header) for u in candidates)


def telegram_valid(secret_token: str, header: str | None) -> bool:
    """Telegram X-Telegram-Bot-Api-Secret-Token: the secret_token given to setWebhook, sent verbatim."""
    if not secret_token or not header:
        return False
    return same(secret_token, header)


def fresh(timestamp: str, now: float, max_age_s: float) -> bool:
    """A signed timestamp (Unix seconds) within ``max_age_s`` of ``now``, either way: an old capture is refused."""
    try:
        return abs(now - float(timestamp)) <= max_age_s
    except ValueError:
        return False


def switchboard_body_valid(signing_key: str, raw_body: bytes, header: str | None, now: float, max_age_s: float) -> bool:
    """Our scheme for relays that can sign what they forward (the provider's own does not cover the body):
    ``X-Switchboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>`` with the signing key,
    the same form as Switchboard's outgoing webhooks; ``t`` within ``max_age_s``."""
    if not signing_key or not header:
        return False
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    t, v1 = parts.get("t", ""), parts.get("v1", "")
    if not fresh(t, now, max_age_s) or not v1:
        return False
    expected = hmac.new(signing_key.encode(), t.encode() + b"." + raw_body, hashlib.sha256).hexdigest()
    return same(expected, v1.lower())


def email_webhook_valid(signing_key: str, timestamp: str, token: str, signature: str) -> bool:
    """Inbound-parse webhooks (Mailgun's scheme): hex HMAC-SHA256 of timestamp + token with the signing key."""
    if not signing_key or not signature:
        return False
    expected = hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return same(expected, signature.lower())
