"""The unified customer context, on both shapes: one customer and one history whatever the channel."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.events import Channel, Claim, IdentityKind
from shared.routing_commands import Resolve
from tests.support.runtime import (
    Desk,
    admin_api,
    conversation_of,
    desk_fixture,
    inbound,
    publish,
    settings_for,
    started_desk,
    texted,
    wait_for,
)

SECRET = "identity-secret-for-tests"


class Clock:
    """A clock the test moves: the reopen window is measured on it."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


desk = desk_fixture(inapp_identity_secret=SECRET, reopen_window_hours=24)


http = admin_api


def user_hash(external_id: str) -> str:
    return hmac.new(SECRET.encode(), external_id.encode(), hashlib.sha256).hexdigest()


async def test_whatsapp_then_sms_from_the_same_phone_is_one_customer_with_one_conversation(
    desk: Desk, http: httpx.AsyncClient
) -> None:
    wa = inbound(
        desk.tenant, "+1 415 555 0100", "on whatsapp", channel=Channel.WHATSAPP, kind=IdentityKind.PHONE, verified=True
    )
    await publish(desk, wa)
    first = await wait_for(lambda: conversation_of(desk, wa.id))
    sms = texted(desk.tenant, "(415) 555-0100", "by sms")
    await publish(desk, sms)
    conv = await wait_for(lambda: conversation_of(desk, sms.id))
    assert conv["id"] == first["id"] and conv["status"] == "open"
    theirs = [(m["channel"], m["text"]) for m in conv["messages"] if m["direction"] == "inbound"]
    assert theirs == [("whatsapp", "on whatsapp"), ("sms", "by sms")]
    assert conv["reply_channel"] == "sms", "replies go where the customer wrote last"
    found = (await http.get("/v1/customers", params={"identifier": "+14155550100"})).json()["items"]
    assert [c["id"] for c in found] == [conv["customer_id"]]
    assert [c["id"] for c in found[0]["conversations"]] == [conv["id"]]


async def test_verified_app_email_links_a_later_email_but_an_unverified_prechat_claim_only_suggests(
    desk: Desk, http: httpx.AsyncClient
) -> None:
    posted = await http.post(
        "/v1/messages",
        json={
            "customer": {
                "external_id": "u-x",
                "email": "x@example.com",
                "user_hash": user_hash("u-x"),
                "tier": "gold",
                "language": "fr",
            },
            "text": "from the app",
        },
    )
    assert posted.status_code == 202, posted.text
    app_conv = await wait_for(lambda: conversation_of(desk, posted.json()["event_id"]))
    customer_id = app_conv["customer_id"]

    mail = inbound(desk.tenant, "X@Example.com", "by email", channel=Channel.EMAIL, kind=IdentityKind.EMAIL)
    await publish(desk, mail)
    mail_conv = await wait_for(lambda: conversation_of(desk, mail.id))
    assert mail_conv["customer_id"] == customer_id and mail_conv["id"] == app_conv["id"]

    prechat = inbound(
        desk.tenant,
        "visitor-1",
        "from web chat",
        channel=Channel.CHAT,
        kind=IdentityKind.CHAT_VISITOR,
        claims=(Claim(kind=IdentityKind.EMAIL, value="x@example.com", verified=False),),
        name="X?",
    )
    await publish(desk, prechat)
    chat_conv = await wait_for(lambda: conversation_of(desk, prechat.id))
    assert chat_conv["customer_id"] != customer_id, "an unverified claim never merges"

    customer = (await http.get(f"/v1/customers/{customer_id}")).json()
    assert customer["tier"] == "gold" and customer["language"] == "fr", "verified app claims set the profile"
    assert {(i["kind"], i["value"], i["verified"]) for i in customer["identities"]} == {
        ("app_user", "u-x", True),
        ("email", "x@example.com", True),
    }
    assert [s["customer_id"] for s in customer["suggestions"]] == [chat_conv["customer_id"]]
    visitor = (await http.get(f"/v1/customers/{chat_conv['customer_id']}")).json()
    assert [s["customer_id"] for s in visitor["suggestions"]] == [customer_id]
    assert visitor["email"] == "x@example.com" and [i["kind"] for i in visitor["identities"]] == ["chat_visitor"]


async def test_an_unverified_user_hash_is_refused_and_unsigned_claims_stay_unverified(
    desk: Desk, http: httpx.AsyncClient
) -> None:
    bad = await http.post(
        "/v1/messages", json={"customer": {"external_id": "u-y", "user_hash": "00" * 32}, "text": "x"}
    )
    assert bad.status_code == 403
    plain = await http.post(
        "/v1/messages",
        json={"customer": {"external_id": "u-y", "email": "y@example.com", "tier": "platinum"}, "text": "x"},
    )
    conv = await wait_for(lambda: conversation_of(desk, plain.json()["event_id"]))
    customer = (await http.get(f"/v1/customers/{conv['customer_id']}")).json()
    assert customer["tier"] == "standard", "an unsigned app cannot make itself platinum"
    assert [(i["kind"], i["verified"]) for i in customer["identities"]] == [("app_user", False)]


async def test_verified_identifiers_of_two_customers_merge_them_and_unmerge_restores(
    desk: Desk, http: httpx.AsyncClient
) -> None:
    phone = inbound(
        desk.tenant, "+14155550111", "phone first", channel=Channel.WHATSAPP, kind=IdentityKind.PHONE, verified=True
    )
    mail = inbound(desk.tenant, "m@example.com", "mail second", channel=Channel.EMAIL, kind=IdentityKind.EMAIL)
    await publish(desk, phone)
    a = await wait_for(lambda: conversation_of(desk, phone.id))
    await publish(desk, mail)
    b = await wait_for(lambda: conversation_of(desk, mail.id))
    assert a["customer_id"] != b["customer_id"]
    app = inbound(
        desk.tenant,
        "u-m",
        "app proves both",
        verified=True,
        claims=(
            Claim(kind=IdentityKind.PHONE, value="+1 415 555 0111", verified=True),
            Claim(kind=IdentityKind.EMAIL, value="M@example.com", verified=True),
        ),
    )
    await publish(desk, app)
    merged_conv = await wait_for(lambda: conversation_of(desk, app.id))
    assert merged_conv["customer_id"] == a["customer_id"], "the older customer survives"
    assert [m["text"] for m in merged_conv["messages"] if m["direction"] == "inbound"] == [
        "phone first",
        "mail second",
        "app proves both",
    ]
    gone = (await http.get(f"/v1/customers/{b['customer_id']}")).json()
    assert gone["merged_into"] == a["customer_id"]

    undo = await http.post(f"/v1/customers/{a['customer_id']}/unmerge", json={"customer_id": b["customer_id"]})
    assert undo.status_code == 200, undo.text
    back = (await http.get(f"/v1/conversations/{b['id']}")).json()
    assert back["customer_id"] == b["customer_id"] and back["status"] == "open"
    assert [m["text"] for m in back["messages"] if m["direction"] == "inbound"] == ["mail second"]
    again = await http.post(f"/v1/customers/{a['customer_id']}/unmerge", json={"customer_id": b["customer_id"]})
    assert again.status_code == 409


async def test_manual_merge_needs_a_supervisor_and_refuses_nonsense(desk: Desk, http: httpx.AsyncClient) -> None:
    from services.router.adapters.db.api_keys import generate_key, store_key

    e1, e2 = inbound(desk.tenant, "u-1", "one"), inbound(desk.tenant, "u-2", "two")
    await publish(desk, e1, e2)
    c1 = (await wait_for(lambda: conversation_of(desk, e1.id)))["customer_id"]
    c2 = (await wait_for(lambda: conversation_of(desk, e2.id)))["customer_id"]
    agent_key = generate_key()
    await store_key(desk.router.db, desk.tenant, agent_key, "agent", "agent", datetime.now(UTC))
    as_agent = await http.post(
        f"/v1/customers/{c1}/merge", json={"customer_id": c2}, headers={"Authorization": f"Bearer {agent_key}"}
    )
    assert as_agent.status_code == 403
    assert (await http.post(f"/v1/customers/{c1}/merge", json={"customer_id": c1})).status_code == 409
    assert (await http.post(f"/v1/customers/{c1}/merge", json={"customer_id": "nope"})).status_code == 404
    ok = await http.post(f"/v1/customers/{c1}/merge", json={"customer_id": c2})
    assert ok.status_code == 200
    customer = (await http.get(f"/v1/customers/{c1}")).json()
    assert {i["value"] for i in customer["identities"]} == {"u-1", "u-2"}
    assert [c["status"] for c in customer["conversations"]].count("open") == 1
    kinds = [i["kind"] for i in (await http.get(f"/v1/customers/{c1}/timeline")).json()["items"]]
    assert "customer_merged" in kinds


async def test_profile_patch_changes_only_what_is_sent(desk: Desk, http: httpx.AsyncClient) -> None:
    e = inbound(desk.tenant, "u-p", "hi", name="Pat")
    await publish(desk, e)
    cid = (await wait_for(lambda: conversation_of(desk, e.id)))["customer_id"]
    r = await http.patch(
        f"/v1/customers/{cid}",
        json={
            "tier": "silver",
            "tags": ["vip", "beta"],
            "consent": {"email": True, "sms": False},
            "attributes": {"plan": "pro", "seats": 12},
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["name"], body["tier"], body["tags"], body["consent"], body["attributes"]) == (
        "Pat",
        "silver",
        ["vip", "beta"],
        {"email": True, "sms": False},
        {"plan": "pro", "seats": 12},
    )
    assert (await http.patch(f"/v1/customers/{cid}", json={"tier": "diamond"})).status_code == 422
    assert (await http.patch(f"/v1/customers/{cid}", json={"unknown": 1})).status_code == 422
    assert (await http.patch("/v1/customers/nope", json={"tier": "gold"})).status_code == 404


async def test_resolved_conversation_reopens_inside_the_window_and_a_new_one_starts_after(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    clock = Clock()
    settings = settings_for("embedded", tmp_path, reopen_window_hours=24)
    async with started_desk(settings, clock=clock) as desk:
        first = inbound(desk.tenant, "u-r", "problem")
        await publish(desk, first)
        conv = await wait_for(lambda: conversation_of(desk, first.id))
        assert conv["agent_id"] == desk.agent("agent-ada")
        await desk.router.commands.run(desk.tenant, Resolve(conversation_id=conv["id"], note="refund issued"))
        clock.now += timedelta(hours=23)
        again = inbound(desk.tenant, "u-r", "it came back")
        await publish(desk, again)
        reopened = await wait_for(lambda: conversation_of(desk, again.id))
        assert reopened["id"] == conv["id"] and reopened["status"] == "open" and reopened["reopened_at"]
        assert reopened["agent_id"] == desk.agent("agent-ada"), "routed again"
        await desk.router.commands.run(desk.tenant, Resolve(conversation_id=conv["id"], note="fixed for good"))
        clock.now += timedelta(hours=25)
        later = inbound(desk.tenant, "u-r", "new question")
        await publish(desk, later)
        fresh = await wait_for(lambda: conversation_of(desk, later.id))
        assert fresh["id"] != conv["id"] and fresh["previous_conversation_id"] == conv["id"]
        old = await conversation_of(desk, first.id)
        assert old is not None and old["status"] == "resolved" and old["resolution_note"] == "fixed for good"


async def test_timeline_pages_are_stable_while_new_messages_arrive(desk: Desk, http: httpx.AsyncClient) -> None:
    events = [inbound(desk.tenant, "u-t", f"m{i}") for i in range(30)]
    await publish(desk, *events)
    conv = await wait_for(lambda: conversation_of(desk, events[-1].id))
    cid = conv["customer_id"]
    before = {f"m{i}" for i in range(30)}

    seen: list[Any] = []
    cursor = None
    n = 0
    while True:
        params: dict[str, Any] = {"limit": 7}
        if cursor:
            params["cursor"] = cursor
        page = (await http.get(f"/v1/customers/{cid}/timeline", params=params)).json()
        seen += page["items"]
        # meanwhile the customer keeps writing
        await publish(desk, inbound(desk.tenant, "u-t", f"late{n}"))
        n += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
        await asyncio.sleep(0.05)
    seqs = [i["seq"] for i in seen]
    assert seqs == sorted(seqs, reverse=True) and len(seqs) == len(set(seqs)), "newest first, no repeats"
    texts = {i.get("text") for i in seen if i["kind"] == "message"}
    assert before <= texts, "every message that existed when paging started is on some page"
    kinds = {i["kind"] for i in seen}
    assert {"message", "opened", "assigned"} <= kinds


async def test_timeline_and_search_validate_their_input(desk: Desk, http: httpx.AsyncClient) -> None:
    assert (await http.get("/v1/customers", params={"identifier": "hello there"})).status_code == 422
    assert (await http.get("/v1/customers", params={"identifier": "nobody@example.com"})).json()["items"] == []
    e = inbound(desk.tenant, "u-v", "hi")
    await publish(desk, e)
    cid = (await wait_for(lambda: conversation_of(desk, e.id)))["customer_id"]
    assert (await http.get(f"/v1/customers/{cid}/timeline", params={"limit": 1000})).status_code == 422
    assert (await http.get(f"/v1/customers/{cid}/timeline", params={"cursor": "abc"})).status_code == 422
    assert (await http.get("/v1/customers/nope/timeline")).status_code == 404
