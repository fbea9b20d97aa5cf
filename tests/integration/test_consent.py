"""Consent enforced: with consent withdrawn for a channel, an agent's reply there is refused (409, a problem
naming the reason and the channels still allowed) and a survey there is skipped; the timeline records both.
Consent given, or another channel withdrawn, lets them through."""

from __future__ import annotations

import random
import uuid
from typing import Any

import httpx
from sqlalchemy import select

from services.router.adapters.db import tables as t
from shared.events import Claim, IdentityKind
from shared.routing_commands import Resolve
from tests.support.runtime import Desk, admin_api, arrive, desk_fixture, texted, timeline, timeline_entry

desk = desk_fixture()


api = admin_api


async def sms_customer(desk: Desk, text: str) -> dict[str, Any]:
    """A customer who texted us, and whose app vouched for their email: reachable on sms, whatsapp and email."""
    phone = f"+1415555{random.randrange(10_000):04d}"
    email = Claim(kind=IdentityKind.EMAIL, value=f"{uuid.uuid4().hex[:12]}@example.com", verified=True)
    event = texted(desk.tenant, phone, text, claims=(email,))
    return await arrive(desk, event)


async def set_consent(api: httpx.AsyncClient, customer_id: str, consent: dict[str, bool]) -> None:
    r = await api.patch(f"/v1/customers/{customer_id}", json={"consent": consent})
    assert r.status_code == 200 and r.json()["consent"] == consent, r.text


async def outbound_messages(api: httpx.AsyncClient, conversation_id: str) -> list[dict[str, Any]]:
    r = await api.get(f"/v1/conversations/{conversation_id}")
    assert r.status_code == 200, r.text
    # what agents and surveys sent (the acknowledgement, from "system", has tests of its own)
    return [m for m in r.json()["messages"] if m["direction"] == "outbound" and m["author"] != "system"]


async def test_a_reply_on_a_withdrawn_channel_is_refused_with_409_naming_the_allowed_channels(
    desk: Desk, api: httpx.AsyncClient
) -> None:
    conv = await sms_customer(desk, "my parcel never came")
    url = f"/v1/conversations/{conv['id']}/reply"
    await set_consent(api, conv["customer_id"], {"sms": True})
    assert (await api.post(url, json={"text": "Looking into it"})).status_code == 202

    await set_consent(api, conv["customer_id"], {"sms": False, "whatsapp": False, "marketing": False})
    refused = await api.post(url, json={"text": "It is on its way"})
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert (problem["status"], problem["type"]) == (409, "/problems/invalid-command")
    assert problem["detail"] == (
        "The customer has withdrawn consent to be contacted on sms: no reply goes there. Channels allowed: email."
    )
    assert [m["text"] for m in await outbound_messages(api, conv["id"])] == ["Looking into it"]  # nothing more
    assert await timeline_entry(api, conv, "reply_refused") == {
        "reason": "consent_withdrawn",
        "purpose": "reply",
        "channel": "sms",
        "allowed_channels": ["email"],
        "author": (await outbound_messages(api, conv["id"]))[0]["author"],  # who tried: the same key
    }
    # picking a channel that is allowed goes through; naming one that is withdrawn does not
    assert (await api.post(url, json={"text": "On its way", "channel": "email"})).status_code == 202
    assert (await api.post(url, json={"text": "Hi", "channel": "whatsapp"})).status_code == 409
    assert [m["channel"] for m in await outbound_messages(api, conv["id"])] == ["sms", "email"]


async def test_the_survey_on_a_withdrawn_channel_is_skipped_and_the_timeline_says_why(
    desk: Desk, api: httpx.AsyncClient
) -> None:
    given = await sms_customer(desk, "charged twice")
    withdrawn = await sms_customer(desk, "charged three times")
    await set_consent(api, given["customer_id"], {"sms": True})
    await set_consent(api, withdrawn["customer_id"], {"sms": False})
    for conv in (given, withdrawn):
        await desk.router.commands.run(desk.tenant, Resolve(conversation_id=conv["id"], note="refunded"))

    assert [s.channel for s in await surveys_of(desk, given["id"])] == ["sms"]
    [question] = await outbound_messages(api, given["id"])
    assert question["text"].startswith("How would you rate") and question["channel"] == "sms"
    assert await timeline(api, given["customer_id"], "survey_skipped") == []

    assert await surveys_of(desk, withdrawn["id"]) == []
    assert await outbound_messages(api, withdrawn["id"]) == []
    assert await timeline_entry(api, withdrawn, "survey_skipped") == {
        "reason": "consent_withdrawn",
        "purpose": "survey",
        "channel": "sms",
        "allowed_channels": ["email", "whatsapp"],
        "kind": "csat",
    }
    conv = (await api.get(f"/v1/conversations/{withdrawn['id']}")).json()
    assert conv["status"] == "resolved", "a skipped survey never stops the resolve"


async def surveys_of(desk: Desk, conversation_id: str) -> list[Any]:
    s = t.surveys.c
    async with desk.router.repo.reader() as conn:
        return list(await conn.execute(select(t.surveys).where(s.conversation_id == conversation_id)))
