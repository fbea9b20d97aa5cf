"""A customer's named owner set by the tenant's app (embedded, and PostgreSQL + Kafka): ``owner_agent_id`` on
``POST /v1/messages`` is taken only from a verified user (``user_hash``), like tier and language; routing then
prefers that agent (the assignment says ``owner``). From an unverified user, or naming no agent of the tenant,
it is ignored and the message is still accepted."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import httpx

from tests.integration.test_same_representative import given
from tests.support.runtime import Desk, admin_api, conversation_of, desk_fixture, wait_for

SECRET = "app-identity-secret-for-owner-tests"

desk = desk_fixture(inapp_identity_secret=SECRET)
http = admin_api


def user_hash(external_id: str) -> str:
    return hmac.new(SECRET.encode(), external_id.encode(), hashlib.sha256).hexdigest()


async def post(desk: Desk, http: httpx.AsyncClient, customer: dict[str, Any]) -> dict[str, Any]:
    r = await http.post("/v1/messages", json={"customer": customer, "text": "hello"})
    assert r.status_code == 202, r.text
    event_id = r.json()["event_id"]
    conv: dict[str, Any] = await wait_for(lambda: conversation_of(desk, event_id))
    return conv


async def owner_of(http: httpx.AsyncClient, customer_id: str) -> str | None:
    r = await http.get(f"/v1/customers/{customer_id}")
    assert r.status_code == 200, r.text
    owner: str | None = r.json()["owner_agent_id"]
    return owner


async def test_a_verified_app_user_names_their_owner_and_routing_prefers_them(
    desk: Desk, http: httpx.AsyncClient
) -> None:
    messaging = f"{desk.tenant}-q-messaging"
    # assign directly (no offer), so the assignment's reason is on the conversation's feed event at once
    assert (await http.patch(f"/v1/queues/{messaging}", json={"routing": {}})).status_code == 200
    grace = desk.agent("agent-grace")
    assert (await http.put(f"/v1/agents/{grace}/presence", json={"presence": "online"})).status_code == 200

    conv = await post(
        desk, http, {"external_id": "u-owned", "user_hash": user_hash("u-owned"), "owner_agent_id": grace}
    )
    assert await owner_of(http, conv["customer_id"]) == grace

    # Ada is online with room too: the owner is preferred, and the assignment says why
    assert await wait_for(lambda: given(desk, conv["id"]), timeout_s=10) == (grace, "owner")

    # unverified: the claim is ignored, like tier and language
    conv = await post(desk, http, {"external_id": "u-claims", "owner_agent_id": grace})
    assert await owner_of(http, conv["customer_id"]) is None

    # verified, but naming no agent of this tenant: ignored, and the message is still taken
    conv = await post(
        desk, http, {"external_id": "u-wrong", "user_hash": user_hash("u-wrong"), "owner_agent_id": "nobody"}
    )
    assert await owner_of(http, conv["customer_id"]) is None
