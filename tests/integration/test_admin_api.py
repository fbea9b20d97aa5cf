"""Supervisors manage queues and agents; the queue view shows who waits, in order, and for how long."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from services.router.adapters.db.api_keys import generate_key, store_key
from shared.routing_commands import Resolve
from tests.support.runtime import Desk, admin_api, conversation_of, desk_fixture, inbound, publish, wait_for

desk = desk_fixture()


http = admin_api


async def test_queue_lifecycle_routes_new_work_by_its_channels(desk: Desk, http: httpx.AsyncClient) -> None:
    r = await http.post("/v1/queues", json={"name": "Phone", "channels": ["voice"]})
    assert r.status_code == 201, r.text
    queue = r.json()
    assert (queue["name"], queue["channels"], queue["is_default"]) == ("Phone", ["voice"], False)
    assert (await http.post("/v1/queues", json={"name": "Phone"})).status_code == 409
    assert (await http.post("/v1/queues", json={"name": "x", "channels": ["pigeon"]})).status_code == 422
    agent = (
        await http.post(
            "/v1/agents",
            json={"name": "Tess", "queue_ids": [queue["id"]], "capacity": {"default": 2}, "presence": "online"},
        )
    ).json()
    assert agent["presence"] == "online" and agent["queue_ids"] == [queue["id"]]
    from shared.events import Channel, IdentityKind

    # voice went to the default queue until now; the new queue takes it
    e = inbound(desk.tenant, "+14155550123", "a call", channel=Channel.VOICE, kind=IdentityKind.PHONE)
    await publish(desk, e)
    conv = await wait_for(lambda: conversation_of(desk, e.id))
    assert conv["queue_id"] == queue["id"] and conv["agent_id"] == agent["id"]

    renamed = await http.patch(f"/v1/queues/{queue['id']}", json={"name": "Phone lines"})
    assert renamed.json()["name"] == "Phone lines"
    assert (await http.delete(f"/v1/queues/{queue['id']}")).status_code == 409, "it holds an open conversation"
    assert (await http.delete(f"/v1/agents/{agent['id']}")).status_code == 409, "the agent holds it"
    await desk.router.commands.run(desk.tenant, Resolve(conversation_id=conv["id"], note=None))
    assert (await http.delete(f"/v1/queues/{queue['id']}")).status_code == 204
    assert (await http.get(f"/v1/queues/{queue['id']}")).status_code == 404
    assert (await http.delete(f"/v1/agents/{agent['id']}")).status_code == 204


async def test_agents_validate_their_queues_and_capacity(desk: Desk, http: httpx.AsyncClient) -> None:
    assert (await http.post("/v1/agents", json={"name": "X", "queue_ids": ["nope"]})).status_code == 409
    assert (await http.post("/v1/agents", json={"name": "X", "capacity": {"chat": -1}})).status_code == 422
    created = (await http.post("/v1/agents", json={"name": "Y"})).json()
    assert created["capacity"] == {"default": 3, "email": 5, "voice": 1} and created["presence"] == "offline"
    patched = await http.patch(f"/v1/agents/{created['id']}", json={"capacity": {"default": 1}})
    assert patched.json()["capacity"] == {"default": 1}
    assert (await http.patch(f"/v1/agents/{created['id']}", json={"presence": "online"})).status_code == 422


async def test_the_queue_view_lists_waiting_work_in_order_with_wait_times(desk: Desk, http: httpx.AsyncClient) -> None:
    ada = desk.agent("agent-ada")
    await http.put(f"/v1/agents/{ada}/presence", json={"presence": "offline"})
    events = [inbound(desk.tenant, f"q-{i}", f"waiting {i}") for i in range(3)]
    for e in events:
        await publish(desk, e)
        await wait_for(lambda e=e: conversation_of(desk, e.id))
    view = (await http.get(f"/v1/queues/{desk.tenant}-q-messaging/waiting")).json()["items"]
    expected = [(await conversation_of(desk, e.id))["id"] for e in events]  # type: ignore[index]
    assert [i["conversation_id"] for i in view] == expected
    assert [i["position"] for i in view] == [1, 2, 3]
    assert all(i["waiting_s"] >= 0 for i in view)


async def test_only_supervisors_and_admins_change_configuration(desk: Desk, http: httpx.AsyncClient) -> None:
    agent_key = generate_key()
    await store_key(desk.router.db, desk.tenant, agent_key, "agent", "agent", datetime.now(UTC))
    as_agent = {"Authorization": f"Bearer {agent_key}"}
    assert (await http.post("/v1/queues", json={"name": "Z"}, headers=as_agent)).status_code == 403
    assert (await http.post("/v1/agents", json={"name": "Z"}, headers=as_agent)).status_code == 403
    assert (await http.get(f"/v1/queues/{desk.tenant}-q-email", headers=as_agent)).status_code == 200
    assert (await http.get("/v1/queues/demo-q-email")).status_code == 404, "another tenant's queue"
