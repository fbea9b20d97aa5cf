"""The audit trail: every authenticated API call but message ingestion is recorded in ``audit_log`` (actor,
role, route template, the ids in its path, status) before its response starts, so a read that returned data
is never missing from the trail. Query strings and bodies are not recorded (they may hold personal data)."""

from __future__ import annotations

from typing import Any

from services.router.adapters.db.api_keys import Principal
from services.router.entrypoints.http.services import Services
from services.router.handlers.ports.audit import AuditEntry

# the ingest hot path: customers' own messages, stored with their event ids (the audit of a message is itself)
UNAUDITED = {("POST", "/v1/messages"), ("POST", "/v1/callbacks")}


class AuditTrail:
    def __init__(self, app: Any, router: Services) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return

        async def audited(message: Any) -> None:
            if message["type"] == "http.response.start":
                principal = scope.get("state", {}).get("principal")
                if isinstance(principal, Principal):
                    await self._record(scope, principal, int(message["status"]))
            await send(message)

        await self.app(scope, receive, audited)

    async def _record(self, scope: Any, principal: Principal, status: int) -> None:
        route = getattr(scope.get("route"), "path", None) or scope["path"]
        method = scope["method"]
        if (method, route) in UNAUDITED:
            return
        target = {k: str(v) for k, v in (scope.get("path_params") or {}).items()}
        entry = AuditEntry(principal.tenant_id, principal.key_prefix, principal.role, method, route, status, target)
        await self.router.audit.record(entry)
