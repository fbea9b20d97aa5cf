"""``POST /v1/messages`` without the framework's per-request work, for the requests that need nothing else.

Ingest is the API's hot path: apps post every customer message through it. Answered by its FastAPI route, most
of a request's time went to the framework resolving the route's dependencies and parsing the body into them,
not to the work itself. This middleware answers a request that is plainly valid: a JSON body of a stated
length within the body limit that the route's own model (``MessageIn``) accepts within the text limit, an app's
key (or an admin's) in ``Authorization: Bearer``, within its rate limit, at most one ``Idempotency-Key``, no
query string. It does what the route does (``messages.accept_message``) and answers as it would: 202 with the
same JSON, the same problem for an error raised while accepting (the app's own exception handlers word it),
timed into the same metric under the same route label.

It sits outside the app's other middleware, which would only pass such a request on: the body limit (its
length is within it), the text guard (it cleans no ``/v1/messages`` body, and there is no query to check), the
audit trail (ingestion is not audited). Every other request goes through them, as before.

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
from starlette.responses import Response

from services.router.adapters.db.api_keys import Principal
from services.router.entrypoints.http import messages
from services.router.entrypoints.http.deps import APP_ROLES, authenticate
from services.router.entrypoints.http.messages import MessageIn, accept_message
from services.router.entrypoints.http.services import Services
from shared import metrics, problems
from shared.http_middleware import HttpMiddleware

try:  # FastAPI traces requests itself, and names a request's span when its router selects the route
    from fastapi.telemetry._api import _route_selected
except ImportError:  # pragma: no cover - a FastAPI without it (tests/integration/test_tracing.py would say)

    def _route_selected(*, scope: MutableMapping[str, Any], path: str | None, mount: bool = False) -> None:
        return None


PATH = "/v1/messages"
MAX_KEY_CHARS = 256  # the route's Idempotency-Key header limit
Handler = Callable[[Request, Exception], Awaitable[Response] | Response]
Admitted = tuple[Principal, MessageIn, str | None]


class FastIngest(HttpMiddleware):
    def __init__(
        self, app: Any, router: Services, route: APIRoute, handlers: Mapping[Any, Handler], max_body_bytes: int
    ) -> None:
        super().__init__(app)
        self.router = router
        self.route = route  # the route's own object: what the metrics label a request with
        self.handlers = handlers  # the app's exception handlers (read when an error happens: all installed)
        self.max_body_bytes = max_body_bytes  # problems.BodyLimit's: a longer body is handed on, unread
        self.served = 0  # requests answered here rather than by the route

    async def http(self, scope: Any, receive: Any, send: Any) -> None:
        # a query string goes to the text guard; no other path, method or mount is this route
        if scope["method"] != "POST" or scope["path"] != PATH or scope.get("root_path") or scope["query_string"]:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        headers = self._headers(scope)
        if headers is None:
            await self.app(scope, receive, send)
            return
        body = await problems.read_body(receive)  # bounded: its Content-Length is within the body limit
        if body is None:
            return  # the client went away
        admitted = await self._admitted(headers, body)
        if admitted is None:
            await self.app(scope, problems.replay(body, receive), send)
            return
        status = 500  # what a request that raised before answering ends as (metrics.RequestTimer's rule)
        try:
            status = await self._answer(scope, receive, send, admitted)
        finally:
            metrics.observe_request("POST", self.route.path, status, time.perf_counter() - start)

    async def _answer(self, scope: Any, receive: Any, send: Any, admitted: Admitted) -> int:
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
            return response.status_code
        # the route's JSONResponse, written out: the same two messages, headers and compact JSON body
        body = accepted.model_dump_json().encode()
        await send({"type": "http.response.start", "status": 202, "headers": _response_headers(len(body))})
        await send({"type": "http.response.body", "body": body})
        return 202

    def _headers(self, scope: Any) -> tuple[bytes, bytes | None] | None:
        """The request's Authorization and Idempotency-Key if they, its content type and its length make it
        one to consider here; else None."""
        authorization = content_type = key = length = None
        keys = 0
        for name, value in scope["headers"]:
            if name == b"authorization" and authorization is None:  # the first, as the route reads headers
                authorization = value
            elif name == b"content-type" and content_type is None:
                content_type = value
            elif name == b"content-length":
                length = value if length is None else b"twice"
            elif name == b"idempotency-key":
                key, keys = value, keys + 1
        if authorization is None or keys > 1 or not _is_json(content_type):
            return None
        if length is None or not length.isdigit() or int(length) > self.max_body_bytes:
            return None  # no length (chunked), or too long: problems.BodyLimit's to answer
        return authorization, key

    async def _admitted(self, headers: tuple[bytes, bytes | None], body: bytes) -> Admitted | None:
        """The request's key, message and idempotency key if this is a request to answer here; else None."""
        authorization, key = headers
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


def _response_headers(length: int) -> list[tuple[bytes, bytes]]:
    return [(b"content-length", str(length).encode()), (b"content-type", b"application/json")]


def _is_json(content_type: bytes | None) -> bool:
    """``application/json`` (with parameters, any case): the body the route parses as JSON. No content type,
    or ``application/…+json``, it parses too, but those are rare enough to leave to it."""
    if content_type is None:
        return False
    return content_type.split(b";", 1)[0].strip().lower() == b"application/json"


def install(app: Any, router: Services) -> None:
    """The fast path in front of the route and of the app's own middleware (install it after them)."""
    route = next(r for r in messages.router.routes if isinstance(r, APIRoute) and r.path == PATH)
    app.add_middleware(
        FastIngest,
        router=router,
        route=route,
        handlers=app.exception_handlers,
        max_body_bytes=router.settings.max_body_bytes,
    )
