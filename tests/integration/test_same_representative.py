"""The same representative, in the running router (embedded, and PostgreSQL + Kafka): a returning customer goes
to their named owner; while the owner is busy the conversation waits for them up to the queue's owner_wait_s,
then for the agent who last helped (a sticky queue) up to sticky_wait_s, then goes to anyone. The assignment
says which (``owner``, ``sticky``, ``routed``)."""

from __future__ import annotations

import time
from typing import Any

import httpx
from sqlalchemy import select

from services.router.adapters.db import tables as t
from tests.support.runtime import Desk, admin_client, conversation_of, desk_fixture, inbound, publish, wait_for

WAIT_S = 1.5


desk = desk_fixture(routing_tick_s=0.1)


async def test_owner_then_last_agent_then_anyone(desk: Desk) -> None:
    async with admin_client(desk) as http:
        messaging = f"{desk.tenant}-q-messaging"
        r = await http.patch(
            f"/v1/queues/{messaging}",
            json={"routing": {"strategy": "sticky", "owner_wait_s": WAIT_S, "sticky_wait_s": WAIT_S}},
        )
        assert r.status_code == 200, r.text
        owner, last = desk.agent("agent-ada"), desk.agent("agent-grace")
        for agent in (owner, last):
            assert (await http.patch(f"/v1/agents/{agent}", json={"capacity": {"default": 1}})).status_code == 200
        await http.put(f"/v1/agents/{last}/presence", json={"presence": "online"})
        r = await http.post(
            "/v1/agents",
            json={"name": "Tess", "queue_ids": [messaging], "capacity": {"default": 1}, "presence": "online"},
        )
        anyone = r.json()["id"]

        # the customer is helped by Grace (transferred to her), and then given Ada as their owner
        first = await arrive(desk, "returning")
        await transfer(http, first["id"], last)
        await resolve(http, first["id"])
        r = await http.patch(f"/v1/customers/{first['customer_id']}", json={"owner_agent_id": owner})
        assert r.status_code == 200 and r.json()["owner_agent_id"] == owner, r.text

        # the owner is busy (Grace helped last, and is free): held for the owner, then Grace
        busy_owner = await arrive(desk, "someone-else")
        await transfer(http, busy_owner["id"], owner)
        started = time.monotonic()
        again = await arrive(desk, "returning", after=True)
        assert await holder(desk, again["id"]) == (None, None)
        assert await wait_for(lambda: given(desk, again["id"]), timeout_s=10) == (last, "sticky")
        assert time.monotonic() - started >= WAIT_S
        await resolve(http, again["id"])

        # both busy: held for each in turn, then anyone
        busy_last = await arrive(desk, "a-third-one")
        await transfer(http, busy_last["id"], last)
        started = time.monotonic()
        again = await arrive(desk, "returning", after=True)
        assert await wait_for(lambda: given(desk, again["id"]), timeout_s=10) == (anyone, "routed")
        assert time.monotonic() - started >= 2 * WAIT_S
        await resolve(http, again["id"])

        # the owner is free again: she gets it at once
        await resolve(http, busy_owner["id"])
        again = await arrive(desk, "returning", after=True)
        assert await wait_for(lambda: given(desk, again["id"]), timeout_s=10) == (owner, "owner")


async def arrive(desk: Desk, customer: str, *, after: bool = False) -> dict[str, Any]:
    event = inbound(desk.tenant, customer, "hello again" if after else "hello")
    await publish(desk, event)
    conv: dict[str, Any] = await wait_for(lambda: conversation_of(desk, event.id))
    return conv


async def transfer(http: httpx.AsyncClient, conversation_id: str, agent_id: str) -> None:
    if (await http.get(f"/v1/conversations/{conversation_id}")).json()["agent_id"] == agent_id:
        return  # routing gave it to them already
    r = await http.post(f"/v1/conversations/{conversation_id}/transfer", json={"agent_id": agent_id})
    assert r.status_code == 200, r.text


async def resolve(http: httpx.AsyncClient, conversation_id: str) -> None:
    r = await http.post(f"/v1/conversations/{conversation_id}/resolve", json={"survey": "none"})
    assert r.status_code == 204, r.text


async def holder(desk: Desk, conversation_id: str) -> tuple[str | None, str | None]:
    """Who holds the conversation now, and the reason of the assignment event that gave it to them."""
    async with desk.router.repo.reader() as conn:
        c, e = t.conversations.c, t.agent_events.c
        agent = (await conn.execute(select(c.agent_id).where(c.id == conversation_id))).scalar_one()
        if agent is None:
            return None, None
        reasons = await conn.execute(
            select(e.data)
            .where(e.conversation_id == conversation_id, e.agent_id == agent, e.type == "assignment")
            .order_by(e.seq.desc())
            .limit(1)
        )
        return agent, reasons.scalar_one()["reason"]


async def given(desk: Desk, conversation_id: str) -> tuple[str, str] | None:
    agent, reason = await holder(desk, conversation_id)
    return (agent, reason) if agent is not None and reason is not None else None
