"""An app without a backend reads its user's replies from `GET /v1/in-app/messages`, signed by the user's
user_hash: everything sent to that user, oldest first, resumable from a cursor, nothing twice, nothing of
another user's, and nothing without the right hash."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.runtime import Desk, admin_client, conversation_of, desk_on, wait_for

SECRET = "in-app-identity-secret-for-tests"


def user_hash(external_id: str, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), external_id.encode(), hashlib.sha256).hexdigest()


@pytest.fixture(params=["embedded", "production"])
async def desk(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Desk]:
    async with desk_on(request, tmp_path, inapp_identity_secret=SECRET) as d:
        yield d


@pytest.fixture
async def api(desk: Desk) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(desk) as client:
        yield client


async def feed(api: httpx.AsyncClient, tenant: str, external_id: str, after: int = 0, **kw: Any) -> httpx.Response:
    params = {"tenant": tenant, "external_id": external_id, "user_hash": user_hash(external_id), "after": after}
    return await api.get("/v1/in-app/messages", params={**params, **kw}, headers={"Authorization": ""})


async def writes(desk: Desk, api: httpx.AsyncClient, external_id: str, text: str) -> str:
    customer = {"external_id": external_id, "user_hash": user_hash(external_id)}
    r = await api.post("/v1/messages", json={"customer": customer, "text": text})
    assert r.status_code == 202, r.text
    conv = await wait_for(lambda: conversation_of(desk, r.json()["event_id"]))
    return str(conv["id"])


async def items_after(api: httpx.AsyncClient, tenant: str, external_id: str, after: int, count: int) -> Any:
    async def enough() -> Any:
        r = await feed(api, tenant, external_id, after)
        assert r.status_code == 200, r.text
        return r.json() if len(r.json()["items"]) >= count else None

    return await wait_for(enough)


async def test_the_feed_lists_each_reply_once_from_the_cursor_and_only_the_users_own(
    desk: Desk, api: httpx.AsyncClient
) -> None:
    conv = await writes(desk, api, "u-feed-1", "my order is late")
    await writes(desk, api, "u-feed-2", "a different question")
    r = await api.post(f"/v1/conversations/{conv}/reply", json={"text": "It ships today."})
    assert r.status_code == 202, r.text

    first = await items_after(api, desk.tenant, "u-feed-1", 0, 2)
    [ack, reply] = first["items"]
    assert ack["automated"] is True and ack["conversation_id"] == conv  # the acknowledgement
    assert (reply["text"], reply["automated"], reply["conversation_id"]) == ("It ships today.", False, conv)
    nothing = (await feed(api, desk.tenant, "u-feed-1", first["cursor"])).json()
    assert nothing == {"items": [], "cursor": first["cursor"]}, "resumed from the cursor: nothing twice"

    assert (await api.post(f"/v1/conversations/{conv}/reply", json={"text": "Tracking: 42"})).status_code == 202
    later = await items_after(api, desk.tenant, "u-feed-1", first["cursor"], 1)
    assert [i["text"] for i in later["items"]] == ["Tracking: 42"] and later["cursor"] > first["cursor"]
    paged = (await feed(api, desk.tenant, "u-feed-1", 0, limit=1)).json()
    assert [i["id"] for i in paged["items"]] == [ack["id"]], "oldest first, a page at a time"

    other = (await feed(api, desk.tenant, "u-feed-2")).json()
    assert conv not in {i["conversation_id"] for i in other["items"]}, "another user's replies are not theirs"
    elsewhere = (await feed(api, "another-tenant", "u-feed-1")).json()
    assert elsewhere == {"items": [], "cursor": 0}


async def test_a_hash_that_does_not_match_is_refused(desk: Desk, api: httpx.AsyncClient) -> None:
    await writes(desk, api, "u-feed-3", "hello")
    params = {"tenant": desk.tenant, "external_id": "u-feed-3"}
    for wrong in (user_hash("u-feed-4"), user_hash("u-feed-3", "another-secret")):
        r = await api.get("/v1/in-app/messages", params={**params, "user_hash": wrong}, headers={"Authorization": ""})
        assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json", r.text
    r = await api.get("/v1/in-app/messages", params={**params, "user_hash": "nothex"}, headers={"Authorization": ""})
    assert r.status_code == 422
    desk.router.settings = desk.router.settings.model_copy(update={"inapp_identity_secret": None})
    assert (await feed(api, desk.tenant, "u-feed-3")).status_code == 404
