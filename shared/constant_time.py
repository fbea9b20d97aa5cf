"""Constant-time equality for what a client sends against what we expect: webhook signatures, tokens, user_hash.

``hmac.compare_digest`` raises TypeError for a ``str`` holding anything but ASCII, and a header, form field,
query parameter or JSON value from a hostile client can hold anything (Starlette decodes header bytes as
Latin-1, so UTF-8 on the wire arrives as non-ASCII text). Such an error would surface as a 500 where the
caller owes a 401/403. Compared as UTF-8 bytes, every value is merely unequal; ``surrogatepass`` lets even a
lone surrogate (JSON allows ``"\\ud800"``) encode instead of raising. As with compare_digest, the time taken
may reveal the lengths, never where the values differ."""

from __future__ import annotations

import hmac


def same(a: str | bytes, b: str | bytes) -> bool:
    """``a == b``, in time independent of where they differ; never raises for any str or bytes."""
    return hmac.compare_digest(_utf8(a), _utf8(b))


def _utf8(value: str | bytes) -> bytes:
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
