"""The console's read endpoints (entrypoints/http/desk_views.py) on the embedded desk: an agent's inbox rows
and a queue's waiting list carry the customer's name, the last message, the wait and the SLA deadline; the
supervisor reads SLA risks and duplicate suggestions; agents read only their own inbox and the queues they
serve; another tenant's key finds nothing (404) or an empty list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.router.adapters.db.api_keys import generate_key, store_key
from services.router.adapters.db.seed import seed_demo
from services.router.entrypoints.http.app import create_app
from shared.events import Channel, Claim, IdentityKind
from tests.conftest import random_name
from tests.support.runtime import Desk, arrive, embedded_desk, inbound, serve_app, wait_for

desk = embedded_desk


@pytest.fixture
async def base(desk: Desk) -> AsyncIterator[str]:
    async with serve_app(create_app(desk.router, manage_lifecycle=False)) as url:
        yield url


async def key_for(desk: Desk, tenant: str, role: str, agent_id: str | None = None) -> dict[str, str]:
    key = generate_key()
    await store_key(desk.router.db, tenant, key, role, "test", datetime.now(UTC), agent_id)
    return {"Authorization": f"Bearer {key}"}


async def get(base: str, path: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        return await http.get(path, headers=headers)


async def test_an_agents_inbox_rows_carry_name_last_message_wait_and_sla(desk: Desk, base: str) -> None:
    admin = {"Authorization": f"Bearer {desk.key}"}
    async with httpx.AsyncClient(base_url=base, timeout=10, headers=admin) as http:
        r = await http.patch(
            f"/v1/queues/{desk.tenant}-q-messaging", json={"routing": {"sla": {"first_response_s": {"in_app": 600}}}}
        )
        assert r.status_code == 200, r.text
    message = inbound(desk.tenant, "u-inbox", "My order   never\narrived", name="Marie Curie")
    conv = await arrive(desk, message)
    ada = desk.agent()
    await wait_for(lambda: _held(base, ada, admin))

    r = await get(base, f"/v1/desk/agents/{ada}/conversations", admin)

    assert r.status_code == 200, r.text
    [row] = r.json()["items"]
    assert row["conversation_id"] == conv["id"] and row["customer_id"] == conv["customer_id"]
    assert row["customer_name"] == "Marie Curie"
    assert row["channel"] == "in_app" and row["status"] == "open" and row["offered"] is False
    assert row["last_message"]["text"] == "My order never arrived" and row["last_message"]["direction"] == "inbound"
    assert row["waiting_s"] is not None and row["waiting_s"] >= 0
    assert row["sla"]["kind"] == "first_response" and row["sla"]["stage"] == "ok"
    assert 0 < row["sla"]["remaining_s"] <= 600

    async with httpx.AsyncClient(base_url=base, timeout=10, headers=admin) as http:
        r = await http.post(f"/v1/conversations/{conv['id']}/reply", json={"text": "On its way"})
        assert r.status_code == 202, r.text
    row = (await get(base, f"/v1/desk/agents/{ada}/conversations", admin)).json()["items"][0]
    assert row["waiting_s"] is None, "answered: the customer is not waiting on us"
    assert row["last_message"]["direction"] == "outbound" and row["last_message"]["text"] == "On its way"


async def _held(base: str, agent_id: str, headers: dict[str, str]) -> bool:
    r = await get(base, f"/v1/desk/agents/{agent_id}/conversations", headers)
    return r.status_code == 200 and bool(r.json()["items"])


async def test_a_manual_queues_waiting_list_shows_who_waits_for_supervisors_and_serving_agents(
    desk: Desk, base: str
) -> None:
    admin = {"Authorization": f"Bearer {desk.key}"}
    queue = f"{desk.tenant}-q-messaging"
    async with httpx.AsyncClient(base_url=base, timeout=10, headers=admin) as http:
        r = await http.patch(f"/v1/queues/{queue}", json={"routing": {"strategy": "manual"}})
        assert r.status_code == 200, r.text
    first = inbound(desk.tenant, "u-first", "first in line", name="Ada Customer")
    second = inbound(desk.tenant, "u-second", "second in line", name="Bob Customer")
    await arrive(desk, first)
    await arrive(desk, second)

    supervisor = await key_for(desk, desk.tenant, "supervisor")
    r = await get(base, f"/v1/desk/queues/{queue}/waiting", supervisor)

    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(i["position"], i["customer_name"], i["last_message"]["text"]) for i in items] == [
        (1, "Ada Customer", "first in line"),
        (2, "Bob Customer", "second in line"),
    ]
    assert all(i["waiting_s"] >= 0 and i["redacted"] is False for i in items)

    # Ada serves the queue: she sees who waits, without names and messages (agents_see_queues is off)
    ada = await key_for(desk, desk.tenant, "agent", desk.agent())
    r = await get(base, f"/v1/desk/queues/{queue}/waiting", ada)
    assert r.status_code == 200, r.text
    assert [(i["customer_name"], i["last_message"], i["redacted"]) for i in r.json()["items"]] == [
        (None, None, True),
        (None, None, True),
    ]
    # Alan does not serve it
    alan = await key_for(desk, desk.tenant, "agent", desk.agent("agent-alan"))
    assert (await get(base, f"/v1/desk/queues/{queue}/waiting", alan)).status_code == 403


async def test_agents_read_their_own_inbox_only(desk: Desk, base: str) -> None:
    ada = await key_for(desk, desk.tenant, "agent", desk.agent())
    assert (await get(base, f"/v1/desk/agents/{desk.agent()}/conversations", ada)).status_code == 200
    r = await get(base, f"/v1/desk/agents/{desk.agent('agent-grace')}/conversations", ada)
    assert r.status_code == 403
    assert (await get(base, "/v1/desk/sla", ada)).status_code == 403
    assert (await get(base, "/v1/desk/suggestions", ada)).status_code == 403
    assert (await get(base, "/v1/desk/sla", {})).status_code == 401


async def test_another_tenants_key_finds_nothing_of_this_desk(desk: Desk, base: str) -> None:
    other = random_name("tn")
    await seed_demo(desk.router.db, datetime.now(UTC), tenant_id=other)
    foreign = await key_for(desk, other, "admin")
    claim = Claim(kind=IdentityKind.EMAIL, value="shared@example.com", verified=False)
    await _two_who_may_be_one(desk, claim)

    for path in (
        f"/v1/desk/agents/{desk.agent()}/conversations",
        f"/v1/desk/queues/{desk.tenant}-q-messaging/waiting",
    ):
        r = await get(base, path, foreign)
        assert r.status_code == 404, (path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert (await get(base, "/v1/desk/suggestions", foreign)).json()["items"] == []
    assert (await get(base, "/v1/desk/sla", foreign)).json()["items"] == []
    mine = await get(base, "/v1/desk/suggestions", {"Authorization": f"Bearer {desk.key}"})
    assert len(mine.json()["items"]) == 1


async def _two_who_may_be_one(desk: Desk, claim: Claim) -> list[dict[str, Any]]:
    mail = inbound(desk.tenant, claim.value, "by email", channel=Channel.EMAIL, kind=IdentityKind.EMAIL, name="Lin")
    chat = inbound(
        desk.tenant,
        random_name("v-"),
        "from chat",
        channel=Channel.CHAT,
        kind=IdentityKind.CHAT_VISITOR,
        claims=(claim,),
        name="Lin?",
    )
    convs = [await arrive(desk, event) for event in (mail, chat)]
    assert convs[0]["customer_id"] != convs[1]["customer_id"]
    return convs


async def test_a_suggestion_lists_both_customers_once_and_goes_when_merged(desk: Desk, base: str) -> None:
    supervisor = await key_for(desk, desk.tenant, "supervisor")
    mail, chat = await _two_who_may_be_one(
        desk, Claim(kind=IdentityKind.EMAIL, value="lin@example.com", verified=False)
    )

    r = await get(base, "/v1/desk/suggestions", supervisor)

    assert r.status_code == 200, r.text
    [pair] = r.json()["items"]
    assert sorted(c["id"] for c in pair["customers"]) == sorted((mail["customer_id"], chat["customer_id"]))
    assert [c["name"] for c in pair["customers"]] == ["Lin", "Lin?"], "oldest first: the likely survivor"
    assert pair["shared"] == [{"kind": "email", "value": "lin@example.com"}]
    assert all(c["identities"] >= 1 and c["open_conversations"] == 1 for c in pair["customers"])

    async with httpx.AsyncClient(base_url=base, timeout=10, headers=supervisor) as http:
        r = await http.post(f"/v1/customers/{mail['customer_id']}/merge", json={"customer_id": chat["customer_id"]})
        assert r.status_code == 200, r.text
    assert (await get(base, "/v1/desk/suggestions", supervisor)).json()["items"] == []


async def test_sla_risks_list_warned_conversations_most_urgent_first(desk: Desk, base: str) -> None:
    admin = {"Authorization": f"Bearer {desk.key}"}
    queue = f"{desk.tenant}-q-messaging"
    async with httpx.AsyncClient(base_url=base, timeout=10, headers=admin) as http:
        r = await http.patch(
            f"/v1/queues/{queue}",
            json={"routing": {"strategy": "manual", "sla": {"first_response_s": {"in_app": 1}}}},
        )
        assert r.status_code == 200, r.text
    message = inbound(desk.tenant, "u-late", "hello?", name="Late Larry")
    conv = await arrive(desk, message)

    async def breached() -> list[dict[str, Any]]:
        items = (await get(base, "/v1/desk/sla", admin)).json()["items"]
        return [i for i in items if i["stage"] == "breach"]

    [risk] = await wait_for(breached)
    assert risk["conversation_id"] == conv["id"] and risk["customer_name"] == "Late Larry"
    assert risk["kind"] == "first_response" and risk["remaining_s"] <= 0 and risk["queue_id"] == queue
