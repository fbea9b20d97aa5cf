"""Offers, accept / decline / claim, timers without traffic, routing configuration and the agent feed's
offer, assignment, unassignment and message events, through the REST API on both shapes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.router.bootstrap import build_router
from shared.bus_memory import MemoryBus
from tests.support.runtime import (
    Desk,
    admin_client,
    conversation_of,
    desk_on,
    inbound,
    publish,
    serving,
    settings_for,
    started_desk,
    wait_for,
)
from tests.support.sse import SseEvent, sse_events

SHAPES = ["embedded", "production"]


@pytest.fixture(params=SHAPES)
async def desk(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Desk]:
    async with desk_on(request, tmp_path, routing_tick_s=0.1, routing_sweep_s=0.5) as d:
        yield d


@pytest.fixture
async def api(desk: Desk) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(desk) as http:
        yield http


async def _configure(api: httpx.AsyncClient, desk: Desk, queue: str, **routing: Any) -> dict[str, Any]:
    response = await api.patch(f"/v1/queues/{desk.tenant}-{queue}", json={"routing": routing})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _next(events: AsyncIterator[SseEvent], kind: str, timeout_s: float = 5.0) -> dict[str, Any]:
    """The next feed event of a kind (skipping others)."""
    async with asyncio.timeout(timeout_s):
        async for event in events:
            if event.event == kind:
                data = event.json()
                assert event.id == str(data["seq"])
                return dict(data)
    raise AssertionError("feed ended")


async def test_an_offer_is_accepted_over_the_api_and_the_feed_shows_offer_then_assignment(
    desk: Desk, api: httpx.AsyncClient
) -> None:
    await _configure(api, desk, "q-messaging", offer_timeout_s=30)
    ada = desk.agent("agent-ada")
    async with api.stream("GET", f"/v1/agents/{ada}/feed") as feed:
        events = sse_events(feed)
        await publish(desk, inbound(desk.tenant, "u-offer", "hi"))
        offer = await _next(events, "offer")
        assert offer["agent_id"] == ada and offer["queue_id"] == f"{desk.tenant}-q-messaging"
        conv_id = offer["conversation_id"]
        conv = (await api.get(f"/v1/conversations/{conv_id}")).json()
        assert conv["agent_id"] == ada  # the offer holds the agent's capacity

        accepted = await api.post(f"/v1/agents/{ada}/accept", json={"conversation_id": conv_id})
        assert accepted.status_code == 200, accepted.text
        assignment = await _next(events, "assignment")
        assert assignment["conversation_id"] == conv_id and assignment["reason"] == "accepted"

        # a second accept is refused: the offer is gone
        again = await api.post(f"/v1/agents/{ada}/accept", json={"conversation_id": conv_id})
        assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"

        # new messages in the conversation reach the agent's feed
        await publish(desk, inbound(desk.tenant, "u-offer", "are you there?"))
        message = await _next(events, "message")
        assert message["conversation_id"] == conv_id and message["text"] == "are you there?"


async def test_a_decline_moves_the_offer_to_the_next_agent_and_repeated_declines_escalate(
    desk: Desk, api: httpx.AsyncClient
) -> None:
    await _configure(api, desk, "q-messaging", offer_timeout_s=30, max_declines=2)
    ada, grace = desk.agent("agent-ada"), desk.agent("agent-grace")
    assert (await api.put(f"/v1/agents/{grace}/presence", json={"presence": "online"})).status_code == 200
    async with (
        api.stream("GET", f"/v1/agents/{ada}/feed") as fa,
        api.stream("GET", f"/v1/agents/{grace}/feed") as fg,
    ):
        feeds = {ada: Feed(fa), grace: Feed(fg)}
        await publish(desk, inbound(desk.tenant, "u-decline", "hi"))
        # least loaded, then longest idle, then id: one of them is offered first
        first = await _first_offer(feeds)
        first_agent, conv_id = first["agent_id"], first["conversation_id"]
        other_agent = grace if first_agent == ada else ada
        declined = await api.post(f"/v1/agents/{first_agent}/decline", json={"conversation_id": conv_id})
        assert declined.status_code == 200, declined.text
        gone = await feeds[first_agent].next("unassignment")
        assert gone["conversation_id"] == conv_id and gone["reason"] == "declined"
        second = await feeds[other_agent].next("offer")
        assert second["conversation_id"] == conv_id
        again = await api.post(f"/v1/agents/{other_agent}/decline", json={"conversation_id": conv_id})
        assert again.status_code == 200
        for feed in feeds.values():
            feed.close()
    customer = (await api.get(f"/v1/conversations/{conv_id}")).json()["customer_id"]
    timeline = (await api.get(f"/v1/customers/{customer}/timeline")).json()["items"]
    kinds = [e["kind"] for e in timeline]
    assert "escalated" in kinds and kinds.count("offered") >= 2


class Feed:
    """An SSE feed read in the background, so several can be awaited at once."""

    def __init__(self, response: httpx.Response) -> None:
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task = asyncio.create_task(self._read(response))

    async def _read(self, response: httpx.Response) -> None:
        async for event in sse_events(response):
            await self.events.put({"event": event.event, **event.json()})

    async def next(self, kind: str, timeout_s: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout_s):
            while True:
                item = await self.events.get()
                if item["event"] == kind:
                    return item

    def close(self) -> None:
        self.task.cancel()


async def _first_offer(feeds: dict[str, Feed]) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while True:
            for feed in feeds.values():
                while not feed.events.empty():
                    item = feed.events.get_nowait()
                    if item["event"] == "offer":
                        return item
            await asyncio.sleep(0.02)


async def test_an_unanswered_offer_times_out_without_any_other_traffic(desk: Desk, api: httpx.AsyncClient) -> None:
    await _configure(api, desk, "q-messaging", offer_timeout_s=0.5)
    ada, grace = desk.agent("agent-ada"), desk.agent("agent-grace")
    async with api.stream("GET", f"/v1/agents/{ada}/feed") as fa:
        ada_events = sse_events(fa)
        await publish(desk, inbound(desk.tenant, "u-timeout", "hi"))
        offer = await _next(ada_events, "offer")
        assert (await api.put(f"/v1/agents/{grace}/presence", json={"presence": "online"})).status_code == 200
        # Grace came online after the offer was made: the conversation is Ada's until the offer times out,
        # then it goes to Grace, by the router's timer alone.
        gone = await _next(ada_events, "unassignment", timeout_s=5)
        assert gone["reason"] == "offer_timeout" and gone["conversation_id"] == offer["conversation_id"]

    async def offered_to_grace() -> bool:
        conv = (await api.get(f"/v1/conversations/{offer['conversation_id']}")).json()
        return bool(conv["agent_id"] == grace)

    await wait_for(offered_to_grace, 5)


async def test_manual_queues_wait_for_a_claim(desk: Desk, api: httpx.AsyncClient) -> None:
    await _configure(api, desk, "q-messaging", strategy="manual")
    ada = desk.agent("agent-ada")
    event = inbound(desk.tenant, "u-claim", "hi")
    await publish(desk, event)

    async def waiting() -> list[dict[str, Any]]:
        items = (await api.get(f"/v1/queues/{desk.tenant}-q-messaging/waiting")).json()["items"]
        return list(items)

    items = await wait_for(waiting)
    conv_id = items[0]["conversation_id"]
    assert (await api.get(f"/v1/conversations/{conv_id}")).json()["agent_id"] is None
    claimed = await api.post(f"/v1/agents/{ada}/claim", json={"conversation_id": conv_id})
    assert claimed.status_code == 200, claimed.text
    assert (await api.get(f"/v1/conversations/{conv_id}")).json()["agent_id"] == ada
    twice = await api.post(f"/v1/agents/{ada}/claim", json={"conversation_id": conv_id})
    assert twice.status_code == 409


async def test_queue_rules_and_agent_languages_come_from_the_api(desk: Desk, api: httpx.AsyncClient) -> None:
    created = await api.post(
        "/v1/queues",
        json={
            "name": "French",
            "routing": {"rule": {"attr": "language", "eq": "fr"}, "order": 0},
        },
    )
    assert created.status_code == 201, created.text
    french = created.json()["id"]
    assert created.json()["routing"]["rule"] == {"attr": "language", "eq": "fr"}
    agent = await api.post(
        "/v1/agents",
        json={"name": "Amélie", "queue_ids": [french], "languages": ["fr"], "presence": "online"},
    )
    assert agent.status_code == 201, agent.text
    amelie = agent.json()["id"]
    assert agent.json()["languages"] == ["fr"]
    # Ada leaves so only Amélie could take French work
    await api.put(f"/v1/agents/{desk.agent('agent-ada')}/presence", json={"presence": "away"})
    fr = inbound(desk.tenant, "u-fr", "bonjour", verified=True)
    fr.sender.attributes["language"] = "fr"
    await publish(desk, fr)

    conv = await wait_for(lambda: _held(desk, fr.id))
    assert conv["agent_id"] == amelie and conv["queue_id"] == french


@pytest.mark.parametrize(
    "routing",
    [
        {"rule": {"attr": "tier", "op": "eval"}},
        {"hours": {"timezone": "Mars/Olympus", "week": {"mon": ["09:00-17:00"]}}},
        {"hours": {"timezone": "UTC", "week": {"mon": ["17:00-09:00"]}}},
        {"strategy": "random"},
        {"overflow_to": "no-such-queue"},
    ],
)
async def test_bad_routing_configuration_is_refused_with_a_problem(
    desk: Desk, api: httpx.AsyncClient, routing: dict[str, Any]
) -> None:
    response = await api.patch(f"/v1/queues/{desk.tenant}-q-messaging", json={"routing": routing})
    assert response.status_code in (409, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("shape", SHAPES)
async def test_an_open_offer_survives_a_router_restart(
    shape: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The offer (and the capacity it holds) is in the database: a new router process rebuilds it, the agent
    accepts it there, once, and the rebuilt engine counts it on the agent's capacity exactly once."""
    servers = request.getfixturevalue("servers") if shape == "production" else None
    settings = settings_for(shape, tmp_path, servers, routing_tick_s=0.1, routing_sweep_s=0.2)
    bus = None if shape == "production" else MemoryBus()
    async with started_desk(settings, router=build_router(settings, bus=bus) if bus else None) as desk:
        async with (
            serving(desk.router) as base,
            httpx.AsyncClient(base_url=base, timeout=10, headers={"Authorization": f"Bearer {desk.key}"}) as api,
        ):
            await _configure(api, desk, "q-messaging", offer_timeout_s=60)
            event = inbound(desk.tenant, "u-restart", "hi")
            await publish(desk, event)
            conv = await wait_for(lambda: _held(desk, event.id))
        tenant, key = desk.tenant, desk.key
    second = build_router(settings, bus=bus)
    await second.start()
    try:
        async with (
            serving(second) as base,
            httpx.AsyncClient(base_url=base, timeout=10, headers={"Authorization": f"Bearer {key}"}) as api,
        ):
            ada = f"{tenant}-agent-ada"
            # the feed's first page after a restart is the workload: the open offer
            async with api.stream("GET", f"/v1/agents/{ada}/feed") as feed:
                first = await _next(sse_events(feed), "offer")
            assert first["conversation_id"] == conv["id"]
            accepted = await api.post(f"/v1/agents/{ada}/accept", json={"conversation_id": conv["id"]})
            assert accepted.status_code == 200, accepted.text
            conv_now = (await api.get(f"/v1/conversations/{conv['id']}")).json()
            assert conv_now["agent_id"] == ada
            again = await api.post(f"/v1/agents/{ada}/accept", json={"conversation_id": conv["id"]})
            assert again.status_code == 409  # the offer is gone: it became the assignment
            agents = (await api.get("/v1/stats/agents")).json()["items"]
            assert next(a for a in agents if a["agent_id"] == ada)["load"] == {"in_app": 1}
    finally:
        await second.stop()


async def _held(desk: Desk, event_id: str) -> dict[str, Any] | None:
    conv = await conversation_of(desk, event_id)
    return conv if conv and conv["agent_id"] else None
