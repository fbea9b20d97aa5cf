"""RFC 9457 problem details: every error the API gives is ``application/problem+json``, looked up in one
table by exception class. Unknown exceptions are not caught here: they are bugs and should show as such."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.router.domain.errors import InvalidCommand, InvalidIdentity, NotFound
from shared.bus import BusUnavailable
from shared.store import StoreUnavailable

PROBLEM = "application/problem+json"

# exception class → (status, type slug, title)
_TABLE: dict[type[Exception], tuple[int, str, str]] = {
    NotFound: (404, "not-found", "Not found"),
    InvalidIdentity: (422, "invalid-identity", "Invalid identity"),
    InvalidCommand: (409, "invalid-command", "Not allowed in the current state"),
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


def install(app: FastAPI) -> None:
    async def validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        return problem(422, "The request does not match the schema.", slug="validation", errors=errors)

    async def http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return problem(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    async def domain(_: Request, exc: Exception) -> JSONResponse:
        for cls in type(exc).__mro__:
            if cls in _TABLE:
                status, slug, title = _TABLE[cls]
                return problem(status, str(exc) or title, slug=slug, title=title)
        raise exc

    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http)
    for cls in _TABLE:
        app.add_exception_handler(cls, domain)


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
            chunks: list[bytes] = []
            seen = 0
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return  # client went away
                chunks.append(message.get("body", b""))
                seen += len(chunks[-1])
                more = message.get("more_body", False)
                if seen > self.max_bytes:
                    await self._too_large(scope, receive, send)
                    return
            body = b"".join(chunks)
            replayed = False

            async def replay() -> Any:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)

    async def _too_large(self, scope: Any, receive: Any, send: Any) -> None:
        response = problem(413, f"Request bodies are limited to {self.max_bytes} bytes.", slug="too-large")
        await response(scope, receive, send)
