"""Signing the webhooks we send, so receivers can verify them: ``Switchboard-Signature: t=<unix time>,v1=<hex
HMAC-SHA256 of "<t>.<raw body>" keyed with the shared secret>`` (the timestamped scheme Stripe popularised: the
timestamp inside the MAC stops replays of old deliveries)."""

from __future__ import annotations

import hashlib
import hmac
import time

from shared.constant_time import same

HEADER = "Switchboard-Signature"


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, body: bytes, header: str | None, *, tolerance_s: int = 300, now: float | None = None) -> bool:
    """What a receiver does: the MAC matches and the timestamp is recent. False, never an error, for any
    header (a timestamp too large for a float included)."""
    if not header:
        return False
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
        age = abs((time.time() if now is None else now) - t)
    except (KeyError, ValueError, OverflowError):
        return False
    if age > tolerance_s:
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    return same(expected, parts.get("v1", ""))
