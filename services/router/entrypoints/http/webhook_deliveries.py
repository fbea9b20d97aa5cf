"""Outgoing webhook deliveries: what the router sent, is retrying, or gave up on (the dead-letter list); a
supervisor redelivers one after the receiver is fixed. Scoped to the caller's tenant."""

from __future__ import annotations

from typing import Annotated, Any, Protocol

import orjson
from fastapi import APIRouter, Depends, Query, Request

from services.router.entrypoints.http.deps import SupervisorPrincipal
from services.router.entrypoints.http.params import QueryInstant
from services.router.handlers.ports.webhook_deliveries import State
from services.router.handlers.webhook_deliveries import WebhookDeliveries

router = APIRouter(tags=["operations"])


class _Runtime(Protocol):
    @property
    def webhook_deliveries(self) -> WebhookDeliveries: ...


async def _deliveries(request: Request) -> WebhookDeliveries:
    runtime: _Runtime = request.app.state.router
    return runtime.webhook_deliveries


DeliveriesDep = Annotated[WebhookDeliveries, Depends(_deliveries)]


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "state": row["state"],
        "url": row["url"],
        "event_id": row["event_id"],
        "event_type": row["event_type"],
        "conversation_id": row["conversation_id"],
        "attempts": row["attempts"],
        "created_at": row["created_at"],
        "next_attempt_at": row["next_attempt_at"],
        "last_attempt_at": row["last_attempt_at"],
        "last_status": row["last_status"],
        "last_error": row["last_error"],
        "finished_at": row["finished_at"],
        "redeliveries": row["redeliveries"],
        "event": orjson.loads(row["body"]),  # the JSON the receiver is sent
    }


@router.get("/v1/webhook-deliveries")
async def list_webhook_deliveries(
    deliveries: DeliveriesDep,
    principal: SupervisorPrincipal,
    state: Annotated[State, Query(description="failed: given up or refused (the dead-letter list).")] = "failed",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[QueryInstant, Query(description="Queued before this (the last item's created_at).")] = None,
) -> dict[str, Any]:
    """The tenant's outgoing webhooks in one state, newest first, with each one's attempts, the receiver's last
    answer (``last_status``, or ``last_error`` when none came) and the event sent."""
    rows = await deliveries.page(principal.tenant_id, state, limit, before)
    return {"items": [_shown(r) for r in rows]}


@router.post("/v1/webhook-deliveries/{delivery_id}/redeliver", status_code=202)
async def redeliver_webhook(
    delivery_id: str, deliveries: DeliveriesDep, principal: SupervisorPrincipal
) -> dict[str, Any]:
    """Send a failed (or delivered) webhook again, now, with a fresh retry window: same body and
    ``Switchboard-Event-Id``, so a receiver that already has it can tell. 409 while it is still pending."""
    return _shown(await deliveries.redeliver(principal.tenant_id, delivery_id))
