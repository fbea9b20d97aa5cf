"""Configuration changes route at once: waiting work that a change lets an agent take is assigned without any
other traffic (no message, no presence change, no timer of the tenant's)."""

from __future__ import annotations

import asyncio
import time

import httpx

from services.router.domain.model import Presence
from shared.routing_commands import SetPresence
from tests.support.runtime import Desk, admin_api, conversation_of, desk_fixture, inbound, publish, wait_for

WITHIN_S = 2.0


# a routing tick far away: only the change itself may route the waiting work
desk = desk_fixture(routing_tick_s=3600)


http = admin_api


async def assigned_to(desk: Desk, conversation_id: str, event_id: str, agent_id: str) -> None:
    started = time.monotonic()

    async def taken() -> bool:
        conv = await conversation_of(desk, event_id)
        return conv is not None and conv["agent_id"] == agent_id

    await wait_for(taken, timeout_s=WITHIN_S)
    assert time.monotonic() - started < WITHIN_S


async def everyone_offline(desk: Desk) -> None:
    for name in ("agent-ada", "agent-grace", "agent-alan"):
        await desk.router.commands.run(desk.tenant, SetPresence(agent_id=desk.agent(name), presence=Presence.OFFLINE))


async def test_an_agent_created_online_takes_waiting_work_at_once(desk: Desk, http: httpx.AsyncClient) -> None:
    await everyone_offline(desk)
    e = inbound(desk.tenant, "waits-for-a-new-agent", "hello?")
    await publish(desk, e)
    conv = await wait_for(lambda: conversation_of(desk, e.id))
    assert conv["agent_id"] is None
    r = await http.post(
        "/v1/agents",
        json={
            "name": "Tess",
            "queue_ids": [f"{desk.tenant}-q-messaging", f"{desk.tenant}-q-general"],
            "capacity": {"default": 3},
            "presence": "online",
        },
    )
    assert r.status_code == 201, r.text
    await assigned_to(desk, conv["id"], e.id, r.json()["id"])


async def test_a_raised_capacity_takes_waiting_work_at_once(desk: Desk, http: httpx.AsyncClient) -> None:
    ada = desk.agent("agent-ada")
    await everyone_offline(desk)
    r = await http.patch(f"/v1/agents/{ada}", json={"capacity": {"default": 1}})
    assert r.status_code == 200, r.text
    await desk.router.commands.run(desk.tenant, SetPresence(agent_id=ada, presence=Presence.ONLINE))
    first = inbound(desk.tenant, "first-in-line", "one")
    second = inbound(desk.tenant, "second-in-line", "two")
    await publish(desk, first)
    await wait_for(lambda: _held_by(desk, first.id, ada))
    await publish(desk, second)
    conv = await wait_for(lambda: conversation_of(desk, second.id))
    assert conv["agent_id"] is None, "Ada is full"
    r = await http.patch(f"/v1/agents/{ada}", json={"capacity": {"default": 2}})
    assert r.status_code == 200, r.text
    await assigned_to(desk, conv["id"], second.id, ada)


async def test_an_agent_added_to_a_queue_takes_its_waiting_work_at_once(desk: Desk, http: httpx.AsyncClient) -> None:
    grace = desk.agent("agent-grace")
    await everyone_offline(desk)
    r = await http.patch(f"/v1/agents/{grace}", json={"queue_ids": [f"{desk.tenant}-q-general"]})
    assert r.status_code == 200, r.text
    await desk.router.commands.run(desk.tenant, SetPresence(agent_id=grace, presence=Presence.ONLINE))
    e = inbound(desk.tenant, "in-messaging", "hi")
    await publish(desk, e)
    conv = await wait_for(lambda: conversation_of(desk, e.id))
    assert conv["agent_id"] is None and conv["queue_id"] == f"{desk.tenant}-q-messaging"
    r = await http.patch(
        f"/v1/agents/{grace}", json={"queue_ids": [f"{desk.tenant}-q-general", f"{desk.tenant}-q-messaging"]}
    )
    assert r.status_code == 200, r.text
    await assigned_to(desk, conv["id"], e.id, grace)


async def _held_by(desk: Desk, event_id: str, agent_id: str) -> bool:
    conv = await conversation_of(desk, event_id)
    return conv is not None and conv["agent_id"] == agent_id


async def test_changes_in_a_row_and_at_once_all_succeed_while_their_ticks_route(
    desk: Desk, http: httpx.AsyncClient
) -> None:
    """Each change puts a routing pass on the log; the next change must not deadlock with it (a change and a
    routing pass take the tenant's lock first, then rows)."""
    ada = desk.agent("agent-ada")
    for n in range(10):
        r = await http.patch(f"/v1/agents/{ada}", json={"capacity": {"default": 1 + n % 3}})
        assert r.status_code == 200, r.text
    answers = await asyncio.gather(
        *(http.patch(f"/v1/agents/{ada}", json={"capacity": {"default": 1 + n % 3}}) for n in range(10)),
        *(http.post("/v1/agents", json={"name": f"Temp {n}", "presence": "online"}) for n in range(5)),
    )
    assert [r.status_code for r in answers] == [200] * 10 + [201] * 5, [r.text for r in answers if r.is_error]
