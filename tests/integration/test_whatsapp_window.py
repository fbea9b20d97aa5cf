"""WhatsApp's 24-hour customer service window on the embedded desk: inside it an agent's free text goes out as
ever; 25 hours after the customer's last message free text is refused (409, the time the window closed, a
timeline entry) and an approved template goes out in the Cloud API's request shape, checked at a local
stand-in of the Graph API. Templates are WhatsApp's: on another channel one is refused (422)."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from services.connectors.bootstrap import build_runtime, create_app
from shared.events import Channel
from shared.routing_commands import Resolve
from tests.support.http import http_client
from tests.support.providers import FakeProviders, fake_providers
from tests.support.runtime import (
    admin_client,
    conversation_of,
    serve_app,
    settings_for,
    started_desk,
    timeline,
    timeline_entry,
    wait_for,
)
from tests.support.system import SECRETS

CLOUD_API = "/v21.0/PHONE_NUMBER_ID/messages"


class MovableClock:
    """The router's clock: real time until the test moves it on."""

    def __init__(self) -> None:
        self.ahead = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


@dataclass
class WhatsAppDesk:
    tenant: str
    api: httpx.AsyncClient
    connectors: Any
    fake: FakeProviders
    base: str  # the meta connector's HTTP server
    clock: MovableClock
    desk: Any

    def cloud_api_bodies(self) -> list[dict[str, Any]]:
        return [r.json for r in self.fake.requests if r.path == CLOUD_API]


@asynccontextmanager
async def whatsapp_desk(tmp_path: Path) -> AsyncIterator[WhatsAppDesk]:
    """An embedded router on a clock the test moves, the meta connector on the same bus, a fake Graph API."""
    async with fake_providers() as fake:
        settings = settings_for(
            "embedded",
            tmp_path,
            **SECRETS,
            meta_graph_base_url=fake.base,
            blob_dir=str(tmp_path / "blobs"),
            outbound_backoff_s=0.05,
        )
        clock = MovableClock()
        async with started_desk(settings, clock=clock) as desk:
            conn_settings = settings.model_copy(update={"connector_tenant": desk.tenant})
            runtime = build_runtime(conn_settings, ("meta",), bus=desk.bus)
            await runtime.start()
            try:
                async with (
                    serve_app(create_app(runtime, manage_lifecycle=False)) as base,
                    admin_client(desk) as api,
                ):
                    yield WhatsAppDesk(desk.tenant, api, runtime, fake, base, clock, desk)
            finally:
                await runtime.stop()


async def customer_writes(d: WhatsAppDesk, wa_id: str, text: str) -> dict[str, Any]:
    """A signed Cloud API webhook with one text message from ``wa_id``; the conversation once stored."""
    wamid = f"wamid.{uuid.uuid4().hex}"
    message = {"from": wa_id, "id": wamid, "timestamp": str(int(time.time())), "type": "text", "text": {"body": text}}
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "PHONE_NUMBER_ID"},
        "contacts": [{"profile": {"name": "Kerry"}, "wa_id": wa_id}],
        "messages": [message],
    }
    body = orjson.dumps(
        {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"value": value}]}]}
    )
    sig = hmac.new(SECRETS["meta_app_secret"].encode(), body, hashlib.sha256).hexdigest()
    async with http_client(base_url=d.base) as http:
        r = await http.post(
            "/webhooks/meta",
            content=body,
            headers={"X-Hub-Signature-256": f"sha256={sig}", "Content-Type": "application/json"},
        )
    assert r.status_code == 200, r.text
    event_id = d.connectors.event_id(Channel.WHATSAPP, wamid)
    conv: dict[str, Any] = await wait_for(lambda: conversation_of(d.desk, event_id))
    return conv


async def sent_status(d: WhatsAppDesk, conversation_id: str, message_id: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        conv = (await d.api.get(f"/v1/conversations/{conversation_id}")).json()
        msg = next(m for m in conv["messages"] if m["id"] == message_id)
        return msg if msg["status"] == "sent" else None

    found: dict[str, Any] = await wait_for(check)
    return found


def utc(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


async def test_25_hours_after_the_customer_wrote_free_text_is_refused_and_a_template_goes_in_the_cloud_api_shape(
    tmp_path: Path,
) -> None:
    async with whatsapp_desk(tmp_path) as d:
        conv = await customer_writes(d, "14155550123", "Where is my order?")
        url = f"/v1/conversations/{conv['id']}/reply"

        # inside the window: free text goes out as a Cloud API text message, as today
        shown = (await d.api.get(f"/v1/conversations/{conv['id']}")).json()
        [customer_message] = [m for m in shown["messages"] if m["direction"] == "inbound"]
        closes_at = utc(customer_message["received_at"]) + timedelta(hours=24)
        assert utc(shown["whatsapp_window_closes_at"]) == closes_at
        inside = await d.api.post(url, json={"text": "Checking now"})
        assert inside.status_code == 202, inside.text
        await sent_status(d, conv["id"], inside.json()["message_id"])
        assert d.cloud_api_bodies()[-1] == {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "14155550123",
            "type": "text",
            "text": {"preview_url": False, "body": "Checking now"},
        }

        # 25 hours later, by the router's clock: free text refused with a 409 problem naming the closing time
        d.clock.ahead = timedelta(hours=25)
        requests_before = len(d.fake.requests)
        refused = await d.api.post(url, json={"text": "Any news?"})
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert (problem["status"], problem["type"]) == (409, "/problems/invalid-command")
        closed_text = closes_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert problem["detail"] == (
            f"The WhatsApp customer service window closed at {closed_text}, 24 hours after the customer's last "
            "message: WhatsApp delivers no free text now. Send an approved template instead "
            "(template: name, language, parameters)."
        )
        assert await timeline_entry(d.api, conv, "reply_refused") == {
            "reason": "whatsapp_window_closed",
            "purpose": "reply",
            "channel": "whatsapp",
            "window_closed_at": closes_at.isoformat(),
            "author": (await sent_status(d, conv["id"], inside.json()["message_id"]))["author"],  # the same key
        }

        # a template goes out, in the Cloud API's template request shape
        template = {"name": "order_update", "language": "en_US", "parameters": ["Kerry", "#1234"]}
        accepted = await d.api.post(url, json={"template": template})
        assert accepted.status_code == 202, accepted.text
        stored = await sent_status(d, conv["id"], accepted.json()["message_id"])
        assert stored["text"] == "[WhatsApp template order_update (en_US)]: Kerry | #1234"
        new_requests = [r for r in d.fake.requests[requests_before:] if r.path == CLOUD_API]
        assert [r.json for r in new_requests] == [
            {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "14155550123",
                "type": "template",
                "template": {
                    "name": "order_update",
                    "language": {"code": "en_US"},
                    "components": [
                        {
                            "type": "body",
                            "parameters": [{"type": "text", "text": "Kerry"}, {"type": "text", "text": "#1234"}],
                        }
                    ],
                },
            }
        ]
        assert new_requests[0].headers["authorization"] == "Bearer wa-token"

        # the customer writes again: the window opens anew and free text goes
        d.clock.ahead = timedelta()
        await customer_writes(d, "14155550123", "Thanks, got it")
        assert (await d.api.post(url, json={"text": "Glad to help"})).status_code == 202


async def test_a_template_is_refused_off_whatsapp_and_a_reply_is_text_or_template(tmp_path: Path) -> None:
    async with whatsapp_desk(tmp_path) as d:
        conv = await customer_writes(d, "14155550124", "Hello")
        url = f"/v1/conversations/{conv['id']}/reply"
        template = {"name": "order_update", "language": "en", "parameters": []}
        on_sms = await d.api.post(url, json={"template": template, "channel": "sms"})
        assert on_sms.status_code == 422, on_sms.text
        assert on_sms.json()["detail"] == "templates are WhatsApp's: a reply on sms is text"
        both = await d.api.post(url, json={"text": "Hi", "template": template})
        neither = await d.api.post(url, json={"pending": True})
        assert [both.status_code, neither.status_code] == [422, 422]
        bad_name = await d.api.post(url, json={"template": {**template, "name": "Order Update"}})
        assert bad_name.status_code == 422

        # a template without variables, inside the window too: no components
        inside = await d.api.post(url, json={"template": template})
        assert inside.status_code == 202, inside.text
        await sent_status(d, conv["id"], inside.json()["message_id"])
        assert d.cloud_api_bodies()[-1]["template"] == {"name": "order_update", "language": {"code": "en"}}


async def test_the_survey_after_the_window_closed_is_skipped_and_the_resolve_goes_through(tmp_path: Path) -> None:
    async with whatsapp_desk(tmp_path) as d:
        conv = await customer_writes(d, "14155550125", "Broken again")
        sent_before = len(d.cloud_api_bodies())
        d.clock.ahead = timedelta(hours=25)
        await d.desk.router.commands.run(d.tenant, Resolve(conversation_id=conv["id"], note="replaced"))
        shown = (await d.api.get(f"/v1/conversations/{conv['id']}")).json()
        assert shown["status"] == "resolved"
        [skipped] = await timeline(d.api, conv["customer_id"], "survey_skipped")
        assert skipped["data"]["channel"] == "whatsapp"
        assert len(d.cloud_api_bodies()) == sent_before  # no free-text survey Meta would refuse
