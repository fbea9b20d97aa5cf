"""The chat widget's place in line: a web-chat visitor's token (as the chat connector issues it) reads where their
own conversation stands, and nothing else: the place in the queue's serving order, how many wait, the expected
wait once it can be told, when a closed queue opens, and that an agent has it once one does."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.events import Channel, IdentityKind
from tests.support.runtime import Desk, admin_api, conversation_of, desk_on, inbound, publish, wait_for

SECRET = "chat-token-secret-for-tests"


def token(visitor: str, secret: str = SECRET) -> str:
    """A visitor token as the chat connector signs it: ``<visitor>.<first 32 hex of HMAC-SHA256>``."""
    return f"{visitor}.{hmac.new(secret.encode(), visitor.encode(), hashlib.sha256).hexdigest()[:32]}"


@pytest.fixture(params=["embedded", "production"])
async def desk(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Desk]:
    async with desk_on(request, tmp_path, chat_token_secret=SECRET) as d:
        # chat traffic belongs to the connector's tenant: this desk's
        d.router.settings = d.router.settings.model_copy(update={"connector_tenant": d.tenant})
        yield d


api = admin_api


async def chats(desk: Desk, visitor: str) -> dict[str, Any]:
    event = inbound(desk.tenant, visitor, "is anyone there?", channel=Channel.CHAT, kind=IdentityKind.CHAT_VISITOR)
    await publish(desk, event)
    return dict(await wait_for(lambda: conversation_of(desk, event.id)))


async def wait_of(api: httpx.AsyncClient, visitor: str) -> dict[str, Any]:
    # no API key: the visitor token is the credential
    r = await api.get("/v1/chat/wait", params={"token": token(visitor)}, headers={"Authorization": ""})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_a_waiting_visitor_reads_their_place_and_then_that_an_agent_has_them(
    desk: Desk, api: httpx.AsyncClient
) -> None:
    ada = desk.agent("agent-ada")
    assert (await api.put(f"/v1/agents/{ada}/presence", json={"presence": "away"})).status_code == 200
    first = await chats(desk, "v-first")
    await chats(desk, "v-second")

    async def placed() -> bool:
        return (await wait_of(api, "v-second")).get("position") == 2

    await wait_for(placed)
    # nobody online: the place, but no expected wait
    assert await wait_of(api, "v-first") == {"state": "waiting", "position": 1, "waiting": 2, "queue_open": True}
    assert await wait_of(api, "v-second") == {"state": "waiting", "position": 2, "waiting": 2, "queue_open": True}
    assert await wait_of(api, "v-nobody") == {"state": "none"}

    assert (await api.put(f"/v1/agents/{ada}/presence", json={"presence": "online"})).status_code == 200

    # back online, Ada is given the waiting chats (offered first where the queue offers: she accepts)
    async def with_agent() -> bool:
        await api.post(f"/v1/agents/{ada}/accept", json={"conversation_id": first["id"]})
        return (await wait_of(api, "v-first"))["state"] == "with_agent"

    await wait_for(with_agent)

    assert await wait_of(api, "v-first") == {"state": "with_agent"}


async def test_a_closed_queue_says_when_it_opens(desk: Desk, api: httpx.AsyncClient) -> None:
    today = datetime.now(UTC).date()
    every_day = {d: ["00:00-23:59"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    hours = {"timezone": "UTC", "week": every_day, "holidays": [today.isoformat()]}
    for queue in (await api.get("/v1/queues")).json():
        r = await api.patch(f"/v1/queues/{queue['id']}", json={"routing": {"hours": hours}})
        assert r.status_code == 200, r.text
    await chats(desk, "v-late")

    async def placed() -> bool:
        return (await wait_of(api, "v-late")).get("position") == 1

    await wait_for(placed)
    wait = await wait_of(api, "v-late")
    tomorrow = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    assert (wait["queue_open"], datetime.fromisoformat(wait["opens_at"])) == (False, tomorrow)
    assert "expected_wait_s" not in wait, "no estimate while closed"


async def test_a_token_the_chat_secret_did_not_sign_is_refused(desk: Desk, api: httpx.AsyncClient) -> None:
    await chats(desk, "v-real")
    for forged in (token("v-real", "another-secret"), "v-real", "v-real.", ".abc", "v-real." + "0" * 32):
        r = await api.get("/v1/chat/wait", params={"token": forged}, headers={"Authorization": ""})
        assert r.status_code == 401, (forged, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    desk.router.settings = desk.router.settings.model_copy(update={"chat_token_secret": None})
    r = await api.get("/v1/chat/wait", params={"token": token("v-real")}, headers={"Authorization": ""})
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
