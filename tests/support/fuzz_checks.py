"""Checks the API fuzz (tests/e2e/test_api_fuzz.py) adds to schemathesis' own: each takes ``(ctx, response,
case)``, as schemathesis calls its checks, and raises AssertionError on a violation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

PROBLEM = "application/problem+json"
# What is refused at the door, before a route authenticates or authorizes anyone: a body that cannot be read
# (400) or is over the limit (413), and the 422s of text PostgreSQL cannot hold (the text guard's
# `invalid_character`, services/router/entrypoints/http/text_guard.py) and of a body that is not JSON
# (FastAPI parses it before it resolves the route's dependencies). Anything else must wait for the
# credentials and the role.
REFUSED_AT_THE_DOOR = (400, 413)
REFUSED_AT_THE_DOOR_AS_422 = {"invalid_character", "json_invalid"}

Check = Callable[[Any, Any, Any], None]


def problem_names_its_status(ctx: Any, response: Any, case: Any) -> None:
    """Every 4xx is an RFC 9457 problem whose ``status`` is the answer's own."""
    if not 400 <= response.status_code < 500:
        return
    media = (response.headers.get("content-type") or [""])[0].split(";")[0].strip()
    assert media == PROBLEM, f"{response.status_code} answered as {media!r}, not {PROBLEM}"
    body = response.json()
    assert isinstance(body, dict) and body.get("status") == response.status_code, f"problem body: {body!r}"


def refused_without_credentials(ctx: Any, response: Any, case: Any) -> None:
    """schemathesis drops the Authorization header from some malformed requests: those get 401, never a 2xx."""
    if not _authenticated(response):
        _refused(response, 401, "a request without credentials")


def refused_outside(role: str, roles: Sequence[str]) -> Check:
    """For an operation whose ``x-roles`` do not list ``role``: a request with that role's key gets 403, never a
    2xx."""

    def refused_outside_the_operations_roles(ctx: Any, response: Any, case: Any) -> None:
        if _authenticated(response):
            _refused(response, 403, f"role {role}, on an operation for {', '.join(roles)},")

    return refused_outside_the_operations_roles


def _authenticated(response: Any) -> bool:
    return "authorization" in response.request.headers


def _refused(response: Any, expected: int, who: str) -> None:
    """``expected``, or a refusal at the door for the request's form."""
    status = response.status_code
    assert not 200 <= status < 300, f"{who} was admitted ({status})"
    if status == expected or status in REFUSED_AT_THE_DOOR:
        return
    kinds = {error.get("type") for error in response.json().get("errors", [])} if status == 422 else set()
    assert kinds and kinds <= REFUSED_AT_THE_DOOR_AS_422, f"{who} got {status}, not {expected}"
