"""The one catalogue of problem types (RFC 9457 §3.1.1 ``type``): each is ``/problems/<slug>``, a URI that stays
the same across releases and resolves, on the service that answered it, to a page saying what the problem
means and what the caller can do (``GET /problems/<slug>``, served by ``shared/problems.py``).

The HTTP-level types are listed here; a service adds its domain errors' types from its problem table, each
explained by its exception's docstring, so a new error class is documented where it is defined."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

PREFIX = "/problems"


@dataclass(frozen=True, slots=True)
class ProblemType:
    slug: str
    status: int | None  # None: the status varies (``http-error``)
    title: str
    description: str

    @property
    def uri(self) -> str:
        return f"{PREFIX}/{self.slug}"

    def as_json(self) -> dict[str, Any]:
        return {"type": self.uri, "title": self.title, "status": self.status, "description": self.description}


HTTP_TYPES: tuple[ProblemType, ...] = (
    ProblemType(
        "bad-request",
        400,
        "Bad request",
        "The request could not be read, for example a malformed form or multipart body. Fix the request: sent "
        "again unchanged it gets the same answer.",
    ),
    ProblemType(
        "unauthorized",
        401,
        "Unauthorized",
        "No credentials, credentials that are not a bearer token, or a key or token that is unknown, expired or "
        "revoked. Send `Authorization: Bearer <api key or token>` with a valid key of the tenant; the "
        "`WWW-Authenticate` header of the answer says the same. Connector webhooks answer it for a missing "
        "signature header.",
    ),
    ProblemType(
        "forbidden",
        403,
        "Forbidden",
        "The credentials are valid but may not do this: their role is not one the operation admits (each "
        "operation lists its roles as `x-roles` in /openapi.json), an agent acted as another agent, or a "
        "signature (webhook, `user_hash`) did not match.",
    ),
    ProblemType(
        "not-found",
        404,
        "Not found",
        "No such path, or no such id in the caller's tenant. An id that belongs to another tenant answers exactly "
        "like an unknown one.",
    ),
    ProblemType(
        "method-not-allowed",
        405,
        "Method not allowed",
        "The path exists but not with this HTTP method; the `Allow` header lists the methods it takes.",
    ),
    ProblemType(
        "too-large",
        413,
        "Request body too large",
        "The request body is larger than the service accepts (`SWITCHBOARD_MAX_BODY_BYTES`, 64 KiB by default); "
        "`detail` gives the limit. Limits on the values inside a body (a message text's length) are "
        "validation problems instead.",
    ),
    ProblemType(
        "unsupported-media-type",
        415,
        "Unsupported media type",
        "The body's `Content-Type` is not one the operation reads. `/v1` operations take "
        "`Content-Type: application/json`.",
    ),
    ProblemType(
        "validation",
        422,
        "Validation failed",
        "The request does not match the operation's schema, or a value in it cannot be used: a missing field, "
        "a wrong type, a text over its length limit, a NUL character in an identifier. "
        '`detail` names the first field; `errors` lists each one as `loc` (for example `["body", "text"]`), '
        "`msg` and a machine-readable `type`. Fix the fields named: sent again unchanged it gets the same answer.",
    ),
    ProblemType(
        "rate-limited",
        429,
        "Too many requests",
        "The API key made more requests than `SWITCHBOARD_RATE_LIMIT_PER_S` allows on average (with "
        "`SWITCHBOARD_RATE_LIMIT_BURST` at once). Wait the seconds the `Retry-After` header gives, then retry.",
    ),
    ProblemType(
        "unavailable",
        503,
        "Service unavailable",
        "The message bus or the database could not be reached, so nothing was done. Retry later; operations that "
        "take an `Idempotency-Key` are safe to retry with the same key.",
    ),
    ProblemType(
        "not-ready",
        503,
        "Not ready",
        "The process is starting or stopping, or its database does not answer (`GET /readyz`). A load balancer "
        "sends traffic elsewhere until it is ready again.",
    ),
    ProblemType(
        "http-error",
        None,
        "HTTP error",
        "An HTTP error with no more specific type; `status` and `detail` say what happened.",
    ),
)
KNOWN: dict[str, ProblemType] = {p.slug: p for p in HTTP_TYPES}
FALLBACK = KNOWN["http-error"]
# the type an HTTP error of each status gets when the code raising it names none
BY_STATUS: dict[int, ProblemType] = {
    status: KNOWN[slug]
    for status, slug in (
        (400, "bad-request"),
        (401, "unauthorized"),
        (403, "forbidden"),
        (404, "not-found"),
        (405, "method-not-allowed"),
        (413, "too-large"),
        (415, "unsupported-media-type"),
        (422, "validation"),
        (429, "rate-limited"),
        (503, "unavailable"),
    )
}


def for_status(status: int) -> ProblemType:
    return BY_STATUS.get(status, FALLBACK)


def catalogue(domain: dict[type[Exception], tuple[int, str, str]]) -> dict[str, ProblemType]:
    """The HTTP types, and a type for each slug of a service's problem table (status, slug, title), described
    by the docstring of the first exception class mapped to it. A slug the HTTP types have already keeps
    their description."""
    types = dict(KNOWN)
    for cls, (status, slug, title) in domain.items():
        if slug not in types:
            types[slug] = ProblemType(slug, status, title, inspect.getdoc(cls) or title)
    return types
