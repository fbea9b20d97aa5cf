"""``POST /v1/messages`` without the framework's per-request work, for the requests that need nothing else.

Ingest is the API's hot path: apps post every customer message through it. Answered by its FastAPI route, most
of a request's time went to the framework resolving the route's dependencies and parsing the body into them,
not to the work itself. This middleware, the innermost of the app's own (so the body limit, the text guard,
the audit trail, the metrics and the request log still see every request), answers a request that is plainly
valid: a JSON body the route's own model (``MessageIn``) accepts within the text limit, an app's key (or an
admin's) in ``Authorization: Bearer``, within its rate limit, at most one ``Idempotency-Key``. It does what the
route does (``messages.accept_message``) and answers as it would: 202 with the same JSON, the same route
label for the metrics, the same problem for an error raised while accepting (the app's own exception handlers
word it).

Anything else, an error to word or a case to weigh, goes to the route itself, with the body as it came: the
route stays the one description of the operation (its OpenAPI entry, its refusals, their order). The checks
here only decide which of the two answers, never what the answer is; the body is validated before the key is
looked up, so a request handed on was never counted against its key's rate limit."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.router.adapters.db.api_keys import Principal
from services.router.entrypoints.http import messages
from services.router.entrypoints.http.deps import APP_ROLES, authenticate
from services.router.entrypoints.http.messages import MessageIn, accept_message
from services.router.entrypoints.http.services import Services
from shared import problems
from shared.http_middleware import HttpMiddleware

try:  # FastAPI traces requests itself, and names a request's span when its router selects the route
    from fastapi.telemetry._api import _route_selected
except ImportError:  # pragma: no cover - a FastAPI without it (tests/integration/test_tracing.py would say)

    def _route_selected(*, scope: MutableMapping[str, Any], path: str | None, mount: bool = False) -> None:
        return None


PATH = "/v1/messages"
MAX_KEY_CHARS = 256  # the route's Idempotency-Key header limit
Handler = Callable[[Request, Exception], Awaitable[Response] | Response]


class FastIngest(HttpMiddleware):
    def __init__(self, app: Any, router: Services, route: APIRoute, handlers: Mapping[Any, Handler]) -> None:
        super().__init__(app)
        self.router = router
        self.route = route  # the route's own object: what the metrics label a request with
        self.handlers = handlers  # the app's exception handlers (read when an error happens: all installed)
        self.served = 0  # requests answered here rather than by the route

    async def http(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["method"] != "POST" or scope["path"] != PATH or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        body = await problems.read_body(receive)  # bounded by problems.BodyLimit, outside this one
        if body is None:
            return  # the client went away
        admitted = await self._admitted(scope, body)
        if admitted is None:
            await self.app(scope, problems.replay(body, receive), send)
            return
        principal, message, key = admitted
        scope["route"] = self.route
        _route_selected(scope=scope, path=PATH)  # FastAPI's request span: named for the route, as the router does
        scope.setdefault("state", {})["principal"] = principal  # where the route's dependency leaves it
        self.served += 1
        try:
            accepted = await accept_message(self.router, principal, message, key)
        except Exception as exc:
            handler = self._handler_of(exc)
            if handler is None:
                raise  # as from the route: to the server error middleware
            answer = handler(Request(scope, receive), exc)
            response = await answer if not isinstance(answer, Response) else answer
            await response(scope, receive, send)
            return
        await JSONResponse(accepted.model_dump(), status_code=202)(scope, receive, send)

    async def _admitted(self, scope: Any, body: bytes) -> tuple[Principal, MessageIn, str | None] | None:
        """The request's key, message and idempotency key if this is a request to answer here; else None."""
        authorization = content_type = key = None
        keys = 0
        for name, value in scope["headers"]:
            if name == b"authorization" and authorization is None:  # the first, as the route reads headers
                authorization = value
            elif name == b"content-type" and content_type is None:
                content_type = value
            elif name == b"idempotency-key":
                key, keys = value, keys + 1
        if authorization is None or keys > 1 or not _is_json(content_type):
            return None
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        idempotency_key = key.decode("latin-1") if key is not None else None
        if idempotency_key is not None and len(idempotency_key) > MAX_KEY_CHARS:
            return None
        try:
            message = MessageIn.model_validate_json(body)
        except ValidationError:
            return None
        if len(message.text) > self.router.settings.max_text_chars:
            return None
        principal = await authenticate(self.router, token)
        if principal is None or principal.role not in APP_ROLES:
            return None
        if self.router.limiter.take(principal.key_prefix, time.monotonic()) > 0:
            return None  # a refused take counts nothing: the route's own take refuses it with its Retry-After
        return principal, message, idempotency_key

    def _handler_of(self, exc: Exception) -> Handler | None:
        """The app's handler for this error, as Starlette's exception middleware finds it (by the error's
        classes, most specific first); none for a plain ``Exception``, which is the server error's."""
        for cls in type(exc).__mro__:
            if cls is Exception:
                return None
            if (handler := self.handlers.get(cls)) is not None:
                return handler
        return None


def _is_json(content_type: bytes | None) -> bool:
    """``application/json`` (with parameters, any case): the body the route parses as JSON. No content type,
    or ``application/…+json``, it parses too, but those are rare enough to leave to it."""
    if content_type is None:
        return False
    return content_type.split(b";", 1)[0].strip().lower() == b"application/json"


def install(app: Any, router: Services) -> None:
    """The fast path in front of the route, inside the app's other middleware (install it before them)."""
    route = next(r for r in messages.router.routes if isinstance(r, APIRoute) and r.path == PATH)
    app.add_middleware(FastIngest, router=router, route=route, handlers=app.exception_handlers)
