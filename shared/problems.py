"""RFC 9457 problem details for every HTTP service: errors are ``application/problem+json``, domain errors
looked up in one table by exception class. Unknown exceptions are not caught here: they are bugs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute

from shared.bus import BusUnavailable
from shared.store import StoreUnavailable

PROBLEM = "application/problem+json"

# exception class → (status, type slug, title); services add their domain errors through install()
ProblemTable = dict[type[Exception], tuple[int, str, str]]
BASE_TABLE: ProblemTable = {
    BusUnavailable: (503, "unavailable", "Message bus unavailable, retry later"),
    StoreUnavailable: (503, "unavailable", "Database unavailable, retry later"),
}

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Validation failed",
    429: "Too many requests",
}


def problem(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": f"/problems/{slug or status}",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {},
    },
    "required": ["type", "title", "status"],
}
# what any route may answer besides its success: bad or missing credentials, role or object refused, unknown
# id, state conflict, body too large, invalid input, rate limit, dependency down
PROBLEM_STATUSES = (400, 401, 403, 404, 409, 413, 415, 422, 429, 503)


def document_problems(routes: Sequence[BaseRoute]) -> None:
    """Declare the problem responses in each route's OpenAPI operation, so clients (and schema checks) know
    every status they can get and its ``application/problem+json`` body."""
    for route in routes:
        if isinstance(route, APIRoute):
            declared = {str(code) for code in route.responses}
            extra: dict[int | str, dict[str, Any]] = {
                code: {
                    "description": _TITLES.get(code, "Unavailable"),
                    "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}},
                }
                for code in PROBLEM_STATUSES
                if str(code) not in declared
            }
            route.responses = {**route.responses, **extra}


def install(app: FastAPI, domain: ProblemTable | None = None) -> None:
    table = {**BASE_TABLE, **(domain or {})}

    async def validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError | ValidationError)
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        return problem(422, "The request does not match the schema.", slug="validation", errors=errors)

    async def http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return problem(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    async def domain_error(_: Request, exc: Exception) -> JSONResponse:
        for cls in type(exc).__mro__:
            if cls in table:
                status, slug, title = table[cls]
                return problem(status, str(exc) or title, slug=slug, title=title)
        raise exc

    app.add_exception_handler(RequestValidationError, validation)
    # A typed value a route builds from the request (a routing command from path and body) refuses what the
    # request's own schema let through: still the caller's input, so still a 422.
    app.add_exception_handler(ValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http)
    for cls in table:
        app.add_exception_handler(cls, domain_error)


class BodyLimit:
    """ASGI middleware: refuse bodies over ``max_bytes`` with 413, by Content-Length or while streaming."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or ()).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._too_large(scope, receive, send)
            return
        if length is None and scope.get("method") in ("POST", "PUT", "PATCH"):
            # Chunked body of unknown length: buffer it up to the limit (small by design), then replay it.
            body = await read_body(receive, self.max_bytes)
            if body is None:
                return  # client went away
            if len(body) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            await self.app(scope, replay(body, receive), send)
            return
        await self.app(scope, receive, send)

    async def _too_large(self, scope: Any, receive: Any, send: Any) -> None:
        response = problem(413, f"Request bodies are limited to {self.max_bytes} bytes.", slug="too-large")
        await response(scope, receive, send)


async def read_body(receive: Any, limit: int | None = None) -> bytes | None:
    """A request's body from an ASGI ``receive``; None if the client went away first. Reading stops as soon as
    more than ``limit`` bytes came (the caller refuses the body then)."""
    chunks: list[bytes] = []
    seen = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        seen += len(chunks[-1])
        if not message.get("more_body", False) or (limit is not None and seen > limit):
            return b"".join(chunks)


def replay(body: bytes, receive: Any) -> Any:
    """An ASGI ``receive`` for a body already read: the body as one message, then the client's own messages (a
    disconnect) as they come."""
    replayed = False

    async def receive_again() -> Any:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_again
