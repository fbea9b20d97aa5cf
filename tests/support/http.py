"""The tests' HTTP client: httpx's default read timeout of 5 s is shorter than a request can wait while the
whole suite loads this 2-core machine (the embedded store has one writer, and a commit can stall on a busy
disk), so a slow answer would fail a test that checks what the answer says, not how fast it came."""

from __future__ import annotations

from typing import Any

import httpx

TIMEOUT_S = 30.0


def http_client(**kwargs: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` with the tests' timeout unless the caller gives one."""
    kwargs.setdefault("timeout", TIMEOUT_S)
    return httpx.AsyncClient(**kwargs)
