"""The routing engine driving the running router: tier priority, presence, and a state fenced across
replicas (a change made through one router is seen by the other's next decision)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import update

from services.router.adapters.db import tables as t
from services.router.bootstrap import build_router
from services.router.domain.model import Presence
from shared.routing_commands import Resolve, SetPresence
from tests.conftest import Servers
from tests.support.runtime import Desk, conversation_of, inbound, publish, settings_for, started_desk, wait_for


@pytest.fixture(params=["embedded", "production"])
async def desk(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Desk]:
    servers = request.getfixturevalue("servers") if request.param == "production" else None
    async with started_desk(settings_for(request.param, tmp_path, servers)) as d:
        async with d.router.db.transaction() as conn:  # Ada takes one chat at a time
            await conn.execute(
                update(t.agents).where(t.agents.c.id == d.agent("agent-ada")).values(capacity={"default": 1})
            )
            await conn.execute(
                update(t.tenants)
                .where(t.tenants.c.id == d.tenant)
                .values(routing_version=t.tenants.c.routing_version + 1)
            )
        yield d


async def test_a_gold_customer_is_served_before_an_earlier_standard_one(desk: Desk) -> None:
    ada = desk.agent("agent-ada")
    busy = inbound(desk.tenant, "busy", "first")
    await publish(desk, busy)
    conv = await wait_for(lambda: conversation_of(desk, busy.id))
    assert conv["agent_id"] == ada
    standard = inbound(desk.tenant, "std", "standard customer")
    await publish(desk, standard)
    await wait_for(lambda: conversation_of(desk, standard.id))
    gold = inbound(desk.tenant, "vip", "gold customer", verified=True)
    gold = gold.model_copy(update={"sender": gold.sender.model_copy(update={"attributes": {"tier": "gold"}})})
    await publish(desk, gold)
    await wait_for(lambda: conversation_of(desk, gold.id))
    await desk.router.commands.run(desk.tenant, Resolve(conversation_id=conv["id"], note=None))
    served = await conversation_of(desk, gold.id)
    waiting = await conversation_of(desk, standard.id)
    assert served is not None and waiting is not None
    assert served["agent_id"] == ada and waiting["agent_id"] is None


async def test_an_agent_going_offline_hands_their_conversations_to_whoever_is_online(desk: Desk) -> None:
    ada, grace = desk.agent("agent-ada"), desk.agent("agent-grace")
    e = inbound(desk.tenant, "c1", "help")
    await publish(desk, e)
    conv = await wait_for(lambda: conversation_of(desk, e.id))
    assert conv["agent_id"] == ada
    await desk.router.commands.run(desk.tenant, SetPresence(agent_id=grace, presence=Presence.ONLINE))
    await desk.router.commands.run(desk.tenant, SetPresence(agent_id=ada, presence=Presence.OFFLINE))
    moved = await conversation_of(desk, e.id)
    assert moved is not None and moved["agent_id"] == grace


async def test_a_change_through_one_replica_is_seen_by_the_other(servers: Servers, tmp_path: Path) -> None:
    """Replicas share PostgreSQL (the embedded desk is one process by design, so this is production-only)."""
    async with started_desk(settings_for("production", tmp_path, servers)) as desk:
        await _replicas(desk)


async def _replicas(desk: Desk) -> None:
    other = build_router(
        desk.router.settings.model_copy(update={"consumer_group": desk.router.settings.consumer_group + "-x"})
    )
    await other.start(consume_events=False)
    try:
        ada, grace = desk.agent("agent-ada"), desk.agent("agent-grace")
        e = inbound(desk.tenant, "r1", "first")
        await publish(desk, e)
        conv = await wait_for(lambda: conversation_of(desk, e.id))  # desk's replica now caches the tenant
        # through the other replica: Grace comes online, Ada leaves (her conversation moves to Grace)
        await other.commands.run(desk.tenant, SetPresence(agent_id=grace, presence=Presence.ONLINE))
        await other.commands.run(desk.tenant, SetPresence(agent_id=ada, presence=Presence.OFFLINE))
        # the first replica decides next: it must know Ada is gone and Grace is full (capacity 3, 1 taken)
        e2 = inbound(desk.tenant, "r2", "second")
        await publish(desk, e2)
        conv2 = await wait_for(lambda: conversation_of(desk, e2.id))
        assert (await conversation_of(desk, e.id))["agent_id"] == grace  # type: ignore[index]
        assert conv2["agent_id"] == grace and conv["id"] != conv2["id"]
    finally:
        await other.stop()


async def test_transfers_to_an_agent_and_to_a_queue_over_the_api(desk: Desk) -> None:
    import httpx

    from tests.support.runtime import serving

    ada, grace = desk.agent("agent-ada"), desk.agent("agent-grace")
    async with (
        serving(desk.router) as base,
        httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {desk.key}"}, timeout=10) as http,
    ):
        await http.put(f"/v1/agents/{grace}/presence", json={"presence": "online"})
        e = inbound(desk.tenant, "t1", "please transfer me")
        await publish(desk, e)
        conv = await wait_for(lambda: conversation_of(desk, e.id))
        first = conv["agent_id"]
        other = grace if first == ada else ada
        moved = await http.post(f"/v1/conversations/{conv['id']}/transfer", json={"agent_id": other})
        assert moved.status_code == 200, moved.text
        assert moved.json()["agent_id"] == other
        to_email = await http.post(
            f"/v1/conversations/{conv['id']}/transfer", json={"queue_id": f"{desk.tenant}-q-email"}
        )
        assert to_email.status_code == 200
        after = to_email.json()
        assert after["queue_id"] == f"{desk.tenant}-q-email"
        assert after["agent_id"] == ada, "Ada serves the email queue; Grace does not"
        bad = await http.post(f"/v1/conversations/{conv['id']}/transfer", json={"agent_id": "nobody"})
        assert bad.status_code == 404
        both = await http.post(f"/v1/conversations/{conv['id']}/transfer", json={"agent_id": ada, "queue_id": "x"})
        assert both.status_code == 409
