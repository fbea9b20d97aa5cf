"""In-app identity verification: the app's backend signs its user's id (``user_hash``, the hex HMAC-SHA256 of
``external_id`` keyed with SWITCHBOARD_INAPP_IDENTITY_SECRET), as Intercom's and Zendesk's messengers do, so
that a user is who the app says and can read only their own replies."""

from __future__ import annotations

import hashlib
import hmac

from shared.constant_time import same


def user_hash(secret: str, external_id: str) -> str:
    raw = external_id.encode("utf-8", "surrogatepass")  # JSON may carry a lone surrogate
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def signed(secret: str, external_id: str, claimed: str) -> bool:
    """Whether ``claimed`` is the user_hash of ``external_id`` (case-insensitive hex, constant time)."""
    return same(user_hash(secret, external_id), claimed.lower())
