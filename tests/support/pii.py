"""Personal data the tests give customers, remembered so that a log scan can prove none of it was logged."""

from __future__ import annotations

import re

SEEN: set[str] = set()

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
PHONE = re.compile(r"\+\d{8,15}\b")


def pii(value: str) -> str:
    """Mark ``value`` (a message text, a name, an address) as personal data; returns it unchanged."""
    SEEN.add(value)
    return value


def leaks(text: str) -> list[str]:
    """Personal data found in ``text``: remembered values, and anything shaped like an email or a phone."""
    found = [value for value in SEEN if value in text]
    found += [m.group(0) for m in EMAIL.finditer(text)]
    found += [m.group(0) for m in PHONE.finditer(text)]
    return found
