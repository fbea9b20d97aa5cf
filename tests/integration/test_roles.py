"""SWITCHBOARD_ROLE on real Kafka and PostgreSQL: an `api` replica takes messages over REST and serves the
agents' live feeds without joining the consumer group; a `router` replica consumes and routes. While only the
API runs, a posted message is accepted and waits on Kafka (nothing consumes it); once a router replica starts,
it is stored and assigned, and the assignment reaches the agent's feed served by the API replica."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import func, select

from services.router.adapters.db import tables as t
from services.router.adapters.db.api_keys import generate_key, store_key
from services.router.adapters.db.seed import seed_demo
from services.router.bootstrap import build_router
from tests.conftest import Servers, random_name
from tests.support.runtime import serving, settings_for
from tests.support.sse import sse_events


async def test_an_api_replica_takes_messages_and_serves_feeds_and_a_router_replica_routes_them(
    servers: Servers, tmp_path: Path
) -> None:
    shared = dict(topic_prefix=random_name("t-") + ".", consumer_group=random_name("g-"))
    api = build_router(settings_for("production", tmp_path, servers, role="api", **shared))
    routing = build_router(settings_for("production", tmp_path, servers, role="router", **shared))
    await api.start()
    tenant, key = random_name("tn"), generate_key()
    await seed_demo(api.db, datetime.now(UTC), tenant_id=tenant)
    await store_key(api.db, tenant, key, "admin", "test", datetime.now(UTC))
    ada = f"{tenant}-agent-ada"
    auth = {"Authorization": f"Bearer {key}"}
    try:
        async with serving(api) as base, httpx.AsyncClient(base_url=base, timeout=30, headers=auth) as http:
            async with http.stream("GET", f"/v1/agents/{ada}/feed") as feed:
                events = sse_events(feed)
                body = {"customer": {"external_id": "u-roles"}, "text": "hello"}
                posted = await http.post("/v1/messages", json=body)
                assert posted.status_code == 202, posted.text
                event_id = posted.json()["event_id"]
                await asyncio.sleep(3)  # the API replica alone: accepted, on Kafka, consumed by nobody
                async with api.db.read() as conn:
                    m = t.messages.c
                    stored = (await conn.execute(select(func.count()).where(m.tenant_id == tenant))).scalar_one()
                assert stored == 0, "nothing consumed the message yet"
                assert api.routing.rebuilds == 0, "the API replica built no engine: it owns no tenant"

                await routing.start()  # a router replica joins the group and consumes what waited
                first = await asyncio.wait_for(anext(events), 60)
            assert first.event == "assignment"
            assert first.json()["event_id"] == event_id and first.json()["agent_id"] == ada
            assert routing.routing.rebuilds == 1 and api.routing.rebuilds == 0
    finally:
        await api.stop()
        if routing.ready:
            await routing.stop()
