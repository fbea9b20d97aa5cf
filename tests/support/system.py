"""A whole desk for connector tests: a router with a fresh tenant, every connector on its own HTTP server
(sharing the in-process bus, or with its own Kafka client in the production shape), fake provider APIs and
an SMTP relay."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from services.connectors.bootstrap import build_runtime, create_app
from services.connectors.runtime import ConnectorRuntime
from shared.settings import Settings
from tests.support.providers import FakeProviders, _Relay, fake_providers, smtp_relay
from tests.support.runtime import Desk, free_port, serve_app, settings_for, started_desk

# The providers' secrets and ids, by provider.
SECRETS: dict[str, str] = {
    **dict(
        meta_app_secret="meta-app-secret", meta_verify_token="meta-verify-token", meta_page_access_token="page-token"
    ),
    **dict(whatsapp_access_token="wa-token", whatsapp_phone_number_id="PHONE_NUMBER_ID"),
    **dict(telegram_secret_token="tg-secret-token", telegram_bot_token="123456:ABC-DEF"),
    **dict(
        twilio_auth_token="twilio-auth-token-0123456789abcd",
        twilio_account_sid="AC00000000000000000000000000000000",
        twilio_from_number="+15550001111",
    ),
    **dict(email_webhook_signing_key="email-signing-key"),
    **dict(chat_token_secret="chat-token-secret"),
}


@dataclass
class System:
    """The desk and its connectors, with the fake providers and the SMTP relay they deliver to."""

    desk: Desk
    connectors: ConnectorRuntime
    settings: Settings
    fake: FakeProviders
    relay: _Relay
    base: str  # the connectors' HTTP server

    @property
    def tenant(self) -> str:
        """The desk's tenant, the one the connectors serve."""
        return self.desk.tenant


@asynccontextmanager
async def system(
    shape: str,
    tmp_path: Path,
    servers: Any = None,
    names: tuple[str, ...] | None = None,
    clock: Callable[[], datetime] | None = None,
    **overrides: Any,
) -> AsyncIterator[System]:
    """The desk and its connectors; with ``clock``, the router's time is that clock's."""
    async with fake_providers() as fake, smtp_relay() as (relay, relay_port):
        settings = settings_for(
            shape,
            tmp_path,
            servers,
            **SECRETS,
            meta_graph_base_url=fake.base,
            telegram_api_base_url=fake.base,
            twilio_api_base_url=fake.base,
            smtp_port=free_port(),
            smtp_relay_port=relay_port,
            blob_dir=str(tmp_path / "blobs"),
            outbound_backoff_s=0.05,
            **overrides,
        )
        async with started_desk(settings, clock=clock) as desk:
            conn_settings = settings.model_copy(update={"connector_tenant": desk.tenant})
            kwargs = {"bus": desk.bus} if shape == "embedded" else {}
            runtime = build_runtime(conn_settings, names or ("email", "chat", "meta", "telegram", "twilio"), **kwargs)
            await runtime.start()
            try:
                async with serve_app(create_app(runtime, manage_lifecycle=False)) as base:
                    yield System(desk, runtime, conn_settings, fake, relay, base)
            finally:
                await runtime.stop()


def signed_email_fields(timestamp: str | None = None, token: str | None = None) -> dict[str, str]:
    """The signing fields of an inbound-parse webhook post (Mailgun's scheme: HMAC-SHA256 of timestamp + token);
    by default signed now, with a token of its own."""
    timestamp = timestamp or str(int(time.time()))
    token = token or f"tok-{uuid.uuid4().hex}"
    key = SECRETS["email_webhook_signing_key"].encode()
    signature = hmac.new(key, (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {"timestamp": timestamp, "token": token, "signature": signature}
