"""The base of the pure ASGI middleware the services install (problems.BodyLimit, metrics.RequestTimer, the
router's TextGuard)."""

from __future__ import annotations

from typing import Any


class HttpMiddleware:
    """Pure ASGI middleware (no BaseHTTPMiddleware: a streamed response is not buffered) that acts on HTTP
    requests only, in ``http``; lifespan and WebSocket scopes pass through untouched."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Any, receive: Any, send: Any) -> None:
        raise NotImplementedError
