"""In-app replies: each goes to the app's backend as a signed webhook (``POST SWITCHBOARD_INAPP_DELIVERY_URL``),
and the backend hands it to the customer's app. The contract is docs/in-app.md. Customers' messages come the
other way through the router's ``POST /v1/messages``, so this connector has no inbound routes.

The body is signed like every webhook Switchboard sends (shared/webhook_signing.py: ``Switchboard-Signature:
t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``), with a key of its own: the identity secret is the app's
to sign ``user_hash`` with, and one key per purpose keeps a MAC made for one from passing for the other. The
backend's answer is the delivery status: 2xx sent (delivered if it says it reached the app), 429, 5xx and
network errors retried with backoff, any other status failed for good."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from fastapi import APIRouter

from services.connectors.channels.provider_api import ProviderApiConnector
from services.connectors.runtime import ConnectorRuntime, Delivered, PermanentFailure
from shared.events import Channel
from shared.outbound import DeliveryState, OutboundMessage
from shared.webhook_signing import HEADER, sign

MESSAGE_ID_HEADER = "Switchboard-Message-Id"


def payload(message: OutboundMessage) -> bytes:
    """The JSON body the app backend receives (docs/in-app.md), as signed."""
    body: dict[str, Any] = {
        "type": message.type,
        "schema_version": 1,
        "message_id": message.id,
        "tenant": message.tenant,
        "conversation_id": message.conversation_id,
        "customer": {"external_id": message.to.value},
        "text": message.text,
        "created_at": message.created_at.isoformat(),
    }
    if message.survey is not None:
        body["survey"] = message.survey.model_dump(mode="json", exclude_none=True)
    return orjson.dumps(body)


def delivered(content_type: str, raw: bytes) -> Delivered:
    """A 2xx answer: ``{"status": "delivered"}`` if the backend put it in front of the customer at once,
    otherwise sent; an ``id`` it gives is kept as the provider's message id. An empty or non-JSON body is fine."""
    answer: Any = None
    if content_type.startswith("application/json"):
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            answer = None
    if not isinstance(answer, dict):
        return Delivered()
    state = DeliveryState.DELIVERED if answer.get("status") == DeliveryState.DELIVERED.value else DeliveryState.SENT
    provider_id = answer.get("id")
    return Delivered(str(provider_id)[:512] if isinstance(provider_id, str | int) else None, state)


class InAppConnector(ProviderApiConnector):
    name = "inapp"
    provider = "in_app"
    outbound_channels = (Channel.IN_APP,)

    async def start(self, runtime: ConnectorRuntime) -> None:
        if self.settings.inapp_delivery_url and self.settings.inapp_delivery_secret is None:
            raise ValueError("SWITCHBOARD_INAPP_DELIVERY_SECRET is needed with SWITCHBOARD_INAPP_DELIVERY_URL")
        self.runtime = runtime
        self.http = httpx.AsyncClient(timeout=self.settings.inapp_delivery_timeout_s)

    def routes(self) -> APIRouter | None:
        return None

    async def deliver(self, message: OutboundMessage) -> Delivered:
        url, secret = self.settings.inapp_delivery_url, self.settings.inapp_delivery_secret
        if not url or secret is None:
            raise PermanentFailure("no in-app delivery URL configured (SWITCHBOARD_INAPP_DELIVERY_URL)")
        body = payload(message)
        headers = {
            "Content-Type": "application/json",
            HEADER: sign(secret.get_secret_value(), body),  # signed at each attempt: a fresh timestamp
            MESSAGE_ID_HEADER: message.id,
        }
        response = await self.send(url, content=body, headers=headers)
        if not response.is_success:
            raise PermanentFailure(f"in_app {response.status_code}: redirects are not followed")
        return delivered(response.headers.get("content-type", ""), response.content)
