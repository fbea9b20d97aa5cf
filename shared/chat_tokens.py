"""Web-chat visitor tokens: ``<visitor id>.<HMAC>``, issued by the chat connector when a visitor first connects
and kept by the widget, so a reload resumes the same conversation. The router checks the same token when the
widget asks for its place in the queue: both read SWITCHBOARD_CHAT_TOKEN_SECRET, and nothing else proves who a
visitor is."""

from __future__ import annotations

import hashlib
import hmac

from shared.constant_time import same


def issue(secret: bytes, visitor_id: str) -> str:
    mac = hmac.new(secret, visitor_id.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{visitor_id}.{mac}"


def visitor_of(secret: bytes, token: str) -> str | None:
    """The visitor a token was issued to; None for a token this secret did not sign."""
    visitor_id, _, mac = token.rpartition(".")
    expected = hmac.new(secret, visitor_id.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]
    return visitor_id if visitor_id and same(mac, expected) else None
