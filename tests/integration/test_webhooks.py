"""Routing events reach other systems as signed webhooks that a receiver can verify."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shared.webhook_signing import sign, verify
from tests.support.http import http_client
from tests.support.runtime import serve_app, settings_for, started_desk, wait_for

SECRET = "webhook-secret-for-tests"


def test_signature_verifies_and_refuses_tampering_other_secrets_and_old_timestamps() -> None:
    body = b'{"type":"assignment"}'
    header = sign(SECRET, body, timestamp=1_800_000_000)
    t, v1 = (p.split("=", 1)[1] for p in header.split(","))
    assert v1 == hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    assert verify(SECRET, body, header, now=1_800_000_010)
    assert not verify(SECRET, body + b" ", header, now=1_800_000_010)
    assert not verify("other", body, header, now=1_800_000_010)
    assert not verify(SECRET, body, header, now=1_800_000_000 + 301), "a replay of an old delivery"
    assert not verify(SECRET, body, None) and not verify(SECRET, body, "garbage")


@pytest.mark.parametrize("shape", ["embedded", "production"])
async def test_assignments_are_posted_signed_to_every_configured_url(
    shape: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    received: list[tuple[bytes, dict[str, str]]] = []
    refused: set[str] = set()

    async def hook(req: Request) -> JSONResponse:
        event_id = req.headers.get("switchboard-event-id", "")
        if event_id not in refused:
            refused.add(event_id)
            return JSONResponse({}, status_code=503)  # each event's first delivery fails: it must be retried
        received.append((await req.body(), dict(req.headers)))
        return JSONResponse({"ok": True})

    def assignments(tenant: str) -> list[tuple[dict[str, Any], bytes, dict[str, str]]]:
        # the shared test database may hold other tests' tenants whose timers this router fires too
        events = [(orjson.loads(body), body, headers) for body, headers in received]
        return [e for e in events if e[0]["type"] == "assignment" and e[0]["tenant"] == tenant]

    servers = request.getfixturevalue("servers") if shape == "production" else None
    async with serve_app(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as receiver:
        settings = settings_for(shape, tmp_path, servers, webhook_urls=f"{receiver}/hook", webhook_secret=SECRET)
        async with started_desk(settings) as desk:
            from tests.support.runtime import serving

            async with serving(desk.router) as base, http_client(base_url=base) as http:
                r = await http.post(
                    "/v1/messages",
                    headers={"Authorization": f"Bearer {desk.key}"},
                    json={"customer": {"external_id": "hooked"}, "text": "hi"},
                )
                assert r.status_code == 202

                async def got() -> bool:
                    return bool(assignments(desk.tenant))

                await wait_for(got, timeout_s=20)
    [(event, body, headers)] = assignments(desk.tenant)
    assert event["id"] in refused, "delivered after its first attempt was refused"
    assert verify(SECRET, body, headers["switchboard-signature"])
    assert headers["switchboard-event-id"] == event["id"]
