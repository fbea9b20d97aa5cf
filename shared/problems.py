"""RFC 9457 problem details for every HTTP service: errors are ``application/problem+json``, domain errors
looked up in one table by exception class. Unknown exceptions are not caught here: they are bugs.

Every ``type`` is a URI of the one catalogue (``shared/problem_catalogue.py``), ``/problems/<slug>``, and
``install`` serves what each means at that URI."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute

from shared.bus import BusUnavailable
from shared.http_middleware import HttpMiddleware
from shared.problem_catalogue import KNOWN, PREFIX, ProblemType, catalogue, for_status
from shared.store import StoreUnavailable

PROBLEM = "application/problem+json"

# exception class → (status, type slug, title); services add their domain errors through install()
ProblemTable = dict[type[Exception], tuple[int, str, str]]
BASE_TABLE: ProblemTable = {
    BusUnavailable: (503, "unavailable", "Message bus unavailable, retry later"),
    StoreUnavailable: (503, "unavailable", "Database unavailable, retry later"),
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
    """The one way a problem body is built. ``slug`` names a type of the catalogue (the HTTP types, or a slug of
    the service's problem table); without it the status chooses the type."""
    kind = KNOWN.get(slug) if slug else for_status(status)
    body = {
        "type": f"{PREFIX}/{slug}" if slug else for_status(status).uri,
        "title": title or (kind.title if kind is not None and kind.status == status else _phrase(status)),
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "An RFC 9457 problem details object.",
    "properties": {
        "type": {
            "type": "string",
            "description": "The problem type: a URI reference, /problems/<slug>, that GET explains.",
            "examples": ["/problems/validation"],
        },
        "title": {"type": "string", "description": "A short summary of the problem type."},
        "status": {"type": "integer", "description": "The HTTP status code."},
        "detail": {"description": "What went wrong with this request."},
        "errors": {
            "type": "array",
            "description": "Validation problems only: each field refused, as loc (where), msg and type.",
            "items": {"type": "object"},
        },
    },
    "required": ["type", "title", "status"],
}
# OpenAPI response descriptions of the statuses below
_RESPONSES = {
    400: "Bad request",
    401: "Missing or invalid credentials",
    403: "Role or object not allowed",
    404: "Unknown path or id",
    409: "Not allowed in the current state",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Validation failed (the fields are named)",
    429: "Too many requests",
    503: "Unavailable, retry later",
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
                    "description": _RESPONSES[code],
                    "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}},
                }
                for code in PROBLEM_STATUSES
                if str(code) not in declared
            }
            route.responses = {**route.responses, **extra}


def install(app: FastAPI, domain: ProblemTable | None = None) -> None:
    """The exception handlers answering problems, and the catalogue's pages (``GET /problems/<slug>``)."""
    table = {**BASE_TABLE, **(domain or {})}

    async def validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError | ValidationError)
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        return problem(422, _validation_detail(errors, request), slug="validation", errors=errors)

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
    install_pages(app, catalogue(table))


def _validation_detail(errors: list[dict[str, Any]], request: Request) -> str:
    """The first field refused and why, e.g. ``body.text: String should have at most 20000 characters``."""
    if not errors:
        return "The request does not match the schema."
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    detail = f"{where}: {first['msg']}" + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if first["loc"] == ["body"] and media and "json" not in media:
        detail += f". The body was sent as {media}: send JSON with 'Content-Type: application/json'"
    return detail


def install_pages(app: FastAPI, types: dict[str, ProblemType]) -> None:
    """``GET /problems`` and ``GET /problems/<slug>``: public, like the API reference they belong to; HTML for
    a browser, JSON otherwise."""

    @app.get(PREFIX, include_in_schema=False)
    async def problem_types(request: Request) -> Response:
        if _wants_html(request):
            items = "".join(
                f'<li><a href="{_e(p.uri)}"><code>{_e(p.slug)}</code></a> · {_status(p)} · {_e(p.title)}</li>'
                for p in types.values()
            )
            return HTMLResponse(_page("Problem types", f"<ul>{items}</ul>"))
        return JSONResponse({"items": [p.as_json() for p in types.values()]})

    @app.get(PREFIX + "/{slug}", include_in_schema=False)
    async def problem_type(slug: str, request: Request) -> Response:
        found = types.get(slug)
        if found is None:
            return problem(404, f"No problem type {slug!r}; GET {PREFIX} lists them.")
        if _wants_html(request):
            body = (
                f"<p><code>{_e(found.uri)}</code> · {_status(found)}</p><p>{_code(_e(found.description))}</p>"
                f'<p><a href="{PREFIX}">All problem types</a> · <a href="/docs">API reference</a></p>'
            )
            return HTMLResponse(_page(found.title, body))
        return JSONResponse(found.as_json())


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _status(p: ProblemType) -> str:
    return f"HTTP {p.status}" if p.status is not None else "any HTTP status"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _code(escaped: str) -> str:
    """The descriptions' `code` spans (Markdown, as the OpenAPI renders them) as HTML."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} · Switchboard</title>"
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem}"
        "code{background:#f2f2f2;padding:0 .2em}</style>"
        f"</head><body><h1>{_e(title)}</h1>{body}</body></html>"
    )


class BodyLimit(HttpMiddleware):
    """ASGI middleware: refuse bodies over ``max_bytes`` with 413, by Content-Length or while streaming."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def http(self, scope: Any, receive: Any, send: Any) -> None:
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
