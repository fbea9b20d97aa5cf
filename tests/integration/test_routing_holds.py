"""Routing that holds, tried as a support team would on a desk (embedded, and PostgreSQL + Kafka): a transfer
survives an unrelated edit, a missed offer sets the agent away with the reason on their feed and they get the
work again once back online, and an agent whose console connection drops is set away after the grace time
(nothing happens if it comes back in time)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select

from services.router.adapters.db import tables as t
from services.router.adapters.db.api_keys import store_key
from shared.routing_commands import SetPresence
from tests.conftest import random_name
from tests.support.runtime import Desk, admin_api, conversation_of, desk_fixture, inbound, publish, serving, wait_for

desk = desk_fixture(routing_tick_s=0.2, presence_grace_s=1.5, presence_heartbeat_s=0.2)


http = admin_api


async def presence(desk: Desk, name: str, value: str) -> None:
    await desk.router.commands.run(desk.tenant, SetPresence(agent_id=desk.agent(name), presence=value))  # type: ignore[arg-type]


async def feed(desk: Desk, agent_id: str) -> list[dict[str, Any]]:
    async with desk.router.repo.reader() as conn:
        e = t.agent_events.c
        rows = await conn.execute(
            select(e.type, e.conversation_id, e.data)
            .where(e.tenant_id == desk.tenant, e.agent_id == agent_id)
            .order_by(e.seq)
        )
        return [dict(r._mapping) for r in rows]


async def arrived(desk: Desk, customer: str) -> dict[str, Any]:
    event = inbound(desk.tenant, customer, "hello?")
    await publish(desk, event)
    conv: dict[str, Any] = await wait_for(lambda: conversation_of(desk, event.id))
    return conv


async def test_a_transfer_to_a_queue_holds_when_an_unrelated_agent_is_edited(
    desk: Desk, http: httpx.AsyncClient
) -> None:
    await presence(desk, "agent-ada", "offline")
    conv = await arrived(desk, "moved-to-email")
    email = f"{desk.tenant}-q-email"
    r = await http.post(f"/v1/conversations/{conv['id']}/transfer", json={"queue_id": email})
    assert r.status_code == 200, r.text
    before = desk.router.routing.rebuilds
    # an unrelated edit: the tenant's engine is rebuilt from the database
    r = await http.patch(f"/v1/agents/{desk.agent('agent-alan')}", json={"capacity": {"default": 4}})
    assert r.status_code == 200, r.text
    await wait_for(lambda: _true(desk.router.routing.rebuilds > before))
    waiting = (await http.get(f"/v1/queues/{email}/waiting")).json()["items"]
    assert [w["conversation_id"] for w in waiting] == [conv["id"]]
    assert (await http.get(f"/v1/conversations/{conv['id']}")).json()["queue_id"] == email
    # Grace serves Messaging, not Email: she must not get it; Alan serves Email and does
    await presence(desk, "agent-grace", "online")
    await presence(desk, "agent-alan", "online")
    taken = await wait_for(lambda: _agent_of(desk, conv["id"]))
    assert taken == desk.agent("agent-alan")


async def test_a_missed_offer_sets_the_agent_away_with_the_reason_and_they_get_it_back_online(
    desk: Desk, http: httpx.AsyncClient
) -> None:
    r = await http.patch(f"/v1/queues/{desk.tenant}-q-messaging", json={"routing": {"offer_timeout_s": 1}})
    assert r.status_code == 200, r.text
    ada = desk.agent("agent-ada")
    conv = await arrived(desk, "missed")
    offers = lambda: _of_type(desk, ada, "offer", conv["id"])  # noqa: E731
    await wait_for(lambda: _at_least(offers(), 1))
    # nobody answers: Ada is set away, told why, and the conversation waits (nobody else is online)
    await wait_for(lambda: _at_least(_of_type(desk, ada, "presence"), 1))
    (told,) = [e["data"] for e in await feed(desk, ada) if e["type"] == "presence"]
    assert told == {"agent": ada, "presence": "away", "reason": "missed_offer"}
    supervisors = [e["data"] for e in await feed(desk, "supervisors") if e["type"] == "presence"]
    assert told in supervisors
    shown = (await http.get(f"/v1/agents/{ada}")).json()
    assert (shown["presence"], shown["presence_reason"]) == ("away", "missed_offer")
    assert await _agent_of(desk, conv["id"]) is None
    # back online: offered it again
    await presence(desk, "agent-ada", "online")
    await wait_for(lambda: _at_least(offers(), 2))


async def test_an_agent_whose_console_drops_is_set_away_after_the_grace_and_their_offer_moves_on(
    desk: Desk, http: httpx.AsyncClient
) -> None:
    r = await http.patch(f"/v1/queues/{desk.tenant}-q-messaging", json={"routing": {"offer_timeout_s": 60}})
    assert r.status_code == 200, r.text
    ada, grace = desk.agent("agent-ada"), desk.agent("agent-grace")
    key = f"sk_{random_name('console')}"  # a key is global: each run its own
    await store_key(desk.router.db, desk.tenant, key, "agent", "console", datetime.now(UTC), agent_id=ada)
    conv = await arrived(desk, "offered-to-ada")
    assert await wait_for(lambda: _agent_of(desk, conv["id"])) == ada  # offered (Messaging offers for 60 s)
    async with serving(desk.router) as base, httpx.AsyncClient(base_url=base, timeout=10) as client:
        headers = {"Authorization": f"Bearer {key}"}
        # the console drops and comes back within the grace: nothing happens
        async with client.stream("GET", f"/v1/agents/{ada}/feed", headers=headers) as response:
            assert response.status_code == 200
            await wait_for(lambda: _connections(desk, ada, open_=1))
        async with client.stream("GET", f"/v1/agents/{ada}/feed", headers=headers):
            await asyncio.sleep(3 * desk.router.settings.presence_grace_s)
            assert (await _presence(desk, ada)) == ("online", None)
            assert await _agent_of(desk, conv["id"]) == ada
            await presence(desk, "agent-grace", "online")
        # the console is closed for good: Ada is set away, the open offer goes to Grace
        await wait_for(lambda: _presence_is(desk, ada, ("away", "disconnected")), timeout_s=15)
        assert await wait_for(lambda: _agent_of_is(desk, conv["id"], grace)) == grace
        told = [e["data"] for e in await feed(desk, ada) if e["type"] == "presence"]
        assert told == [{"agent": ada, "presence": "away", "reason": "disconnected"}]
        withdrawn = [e for e in await feed(desk, ada) if e["type"] == "unassignment"]
        assert [(e["conversation_id"], e["data"]["reason"]) for e in withdrawn] == [(conv["id"], "offer_withdrawn")]


async def test_a_supervisor_watching_an_agents_feed_is_not_that_agents_connection(
    desk: Desk, http: httpx.AsyncClient
) -> None:
    ada = desk.agent("agent-ada")
    async with http.stream("GET", f"/v1/agents/{ada}/feed"):  # the admin key: a supervisor's view
        await asyncio.sleep(0.5)
    await asyncio.sleep(3 * desk.router.settings.presence_grace_s)
    assert (await _presence(desk, ada))[0] == "online"
    assert await _connections(desk, ada, open_=0) and not await _any_connection(desk, ada)


# -- reading the database -----------------------------------------------------------------------------------
async def _true(value: bool) -> bool:
    return value


async def _at_least(rows: Any, n: int) -> bool:
    return len(await rows) >= n


async def _of_type(desk: Desk, agent_id: str, kind: str, conversation_id: str | None = None) -> list[dict[str, Any]]:
    return [
        e for e in await feed(desk, agent_id) if e["type"] == kind and conversation_id in (None, e["conversation_id"])
    ]


async def _agent_of(desk: Desk, conversation_id: str) -> str | None:
    async with desk.router.repo.reader() as conn:
        c = t.conversations.c
        return (await conn.execute(select(c.agent_id).where(c.id == conversation_id))).scalar_one()  # type: ignore[no-any-return]


async def _agent_of_is(desk: Desk, conversation_id: str, agent_id: str) -> str | None:
    found = await _agent_of(desk, conversation_id)
    return found if found == agent_id else None


async def _presence(desk: Desk, agent_id: str) -> tuple[str, str | None]:
    async with desk.router.repo.reader() as conn:
        a = t.agents.c
        row = (await conn.execute(select(a.presence, a.presence_reason).where(a.id == agent_id))).one()
        return row.presence, row.presence_reason


async def _presence_is(desk: Desk, agent_id: str, expected: tuple[str, str | None]) -> bool:
    return await _presence(desk, agent_id) == expected


async def _connections(desk: Desk, agent_id: str, open_: int) -> bool:
    async with desk.router.repo.reader() as conn:
        c = t.agent_connections.c
        rows = (await conn.execute(select(c.id).where(c.agent_id == agent_id, c.closed_at.is_(None)))).all()
        return len(rows) == open_


async def _any_connection(desk: Desk, agent_id: str) -> bool:
    async with desk.router.repo.reader() as conn:
        c = t.agent_connections.c
        return (await conn.execute(select(c.id).where(c.agent_id == agent_id))).first() is not None
