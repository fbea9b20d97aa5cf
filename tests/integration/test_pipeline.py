"""The thinnest real path, on both shapes: embedded (in-process bus + SQLite) and production (Kafka +
PostgreSQL). Message in over REST → event on the bus → customer, conversation, message stored → queued →
assigned to an online agent with room → on routing.assignments and the agent's SSE feed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import httpx
import orjson
import pytest

from services.router.adapters.views import queries
from shared.bus import Outgoing, Record
from shared.events import IdentityKind, encode_event
from tests.support.consumers import drain, reading
from tests.support.runtime import Desk, conversation_of, desk_on, inbound, serving, wait_for
from tests.support.sse import sse_events

SHAPES = ["embedded", "production"]


@pytest.fixture(params=SHAPES)
async def desk(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Desk]:
    async with desk_on(request, tmp_path) as d:
        yield d


async def test_posted_message_is_assigned_and_reaches_the_agent_feed_within_a_second(desk: Desk) -> None:
    async with serving(desk.router) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        auth = {"Authorization": f"Bearer {desk.key}"}
        ada = desk.agent("agent-ada")
        async with http.stream("GET", f"/v1/agents/{ada}/feed", headers=auth) as feed:
            assert feed.status_code == 200
            assert feed.headers["content-type"].startswith("text/event-stream")
            events = sse_events(feed)
            started = time.monotonic()
            posted = await http.post(
                "/v1/messages",
                headers=auth,
                json={
                    "customer": {"external_id": "u-42", "name": "Sam", "email": "sam@example.com"},
                    "text": "Where is my order?",
                },
            )
            assert posted.status_code == 202, posted.text
            event_id = posted.json()["event_id"]
            first = await asyncio.wait_for(anext(events), 1.0)
            latency = time.monotonic() - started
        assert latency < 1.0
        assert first.event == "assignment"
        assignment = first.json()
        assert assignment["agent_id"] == ada and assignment["tenant"] == desk.tenant
        assert first.id == str(assignment["seq"])
        # the assignment names the message that brought it and when it was received: time to agent, from outside
        assert assignment["event_id"] == event_id
        assert (
            0
            <= (
                datetime.fromisoformat(assignment["at"]) - datetime.fromisoformat(assignment["received_at"])
            ).total_seconds()
            < 1
        )

        conv = (await http.get(f"/v1/conversations/{assignment['conversation_id']}", headers=auth)).json()
        assert conv["agent_id"] == ada and conv["status"] == "open" and conv["channel"] == "in_app"
        inbound_ = [(m["text"], m["event_id"]) for m in conv["messages"] if m["direction"] == "inbound"]
        assert inbound_ == [("Where is my order?", event_id)]
        customer = (await http.get(f"/v1/customers/{conv['customer_id']}", headers=auth)).json()
        assert customer["name"] == "Sam" and customer["email"] == "sam@example.com"
        assert [(i["kind"], i["value"]) for i in customer["identities"]] == [("app_user", "u-42")]


async def test_a_customers_second_message_joins_the_same_conversation_without_a_new_assignment(
    desk: Desk,
) -> None:
    first, second = inbound(desk.tenant, "u-7", "one"), inbound(desk.tenant, "u-7", "two")
    await desk.bus.publish([Outgoing(desk.router.topics.events, encode_event(first), first.partition_key())])
    conv = await wait_for(lambda: conversation_of(desk, first.id))
    await desk.bus.publish([Outgoing(desk.router.topics.events, encode_event(second), second.partition_key())])
    conv2 = await wait_for(lambda: conversation_of(desk, second.id))
    assert conv2["id"] == conv["id"]
    assert [m["text"] for m in conv2["messages"] if m["direction"] == "inbound"] == ["one", "two"]
    assignments = await assignments_of(desk)
    assert len(assignments) == 1


async def assignments_of(desk: Desk) -> list[dict]:  # type: ignore[type-arg]
    async with desk.router.repo.reader() as conn:
        events = await queries.feed_after(conn, desk.tenant, desk.agent("agent-ada"), 0)
    return [e for e in events if e["type"] == "assignment"]


async def read_topic(desk: Desk, topic: str, want: int) -> list[Record]:
    async with reading(desk.bus, topic, f"reader-{desk.tenant}") as consumer:
        return await drain(consumer, want, 20, max_records=100)


async def test_malformed_and_unknown_version_events_are_deadlettered_and_later_messages_still_flow(
    desk: Desk,
) -> None:
    topic = desk.router.topics.events
    good = inbound(desk.tenant, "u-after", "after the bad ones")
    unknown = orjson.loads(encode_event(inbound(desk.tenant, "u-v2")))
    unknown["schema_version"] = 2
    bad_phone = inbound(desk.tenant, "not a phone", kind=IdentityKind.PHONE)
    await desk.bus.publish(
        [
            Outgoing(topic, b"{not json", b"k1"),
            Outgoing(topic, orjson.dumps(unknown), b"k2"),
            Outgoing(topic, encode_event(bad_phone), b"k3"),
            Outgoing(topic, encode_event(good), good.partition_key()),
        ]
    )
    conv = await wait_for(lambda: conversation_of(desk, good.id))
    assert conv["messages"][0]["text"] == "after the bad ones"
    dead = await read_topic(desk, desk.router.topics.deadletter, 3)
    reasons = sorted((r.header("reason") or b"").decode() for r in dead)
    assert len(dead) == 3
    assert any("not JSON" in r for r in reasons)
    assert any("unsupported schema_version 2" in r for r in reasons)
    assert any("phone" in r for r in reasons)
    assert {r.value for r in dead} >= {b"{not json"}, "the original bytes are kept"
    assert all(r.header("source-topic") == topic.encode() for r in dead)


async def test_a_redelivered_event_is_stored_and_assigned_once(desk: Desk) -> None:
    event = inbound(desk.tenant, "u-dup", "only once")
    out = Outgoing(desk.router.topics.events, encode_event(event), event.partition_key())
    await desk.bus.publish([out, out])
    await wait_for(lambda: conversation_of(desk, event.id))
    await desk.bus.publish([out])
    marker = inbound(desk.tenant, "u-dup", "marker")
    await desk.bus.publish([Outgoing(desk.router.topics.events, encode_event(marker), marker.partition_key())])
    conv = await wait_for(lambda: conversation_of(desk, marker.id))
    assert [m["text"] for m in conv["messages"] if m["direction"] == "inbound"] == ["only once", "marker"]
    assert len(await assignments_of(desk)) == 1


async def test_work_waits_in_its_queue_until_an_agent_comes_online(desk: Desk) -> None:
    async with serving(desk.router) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        auth = {"Authorization": f"Bearer {desk.key}"}
        ada, grace = desk.agent("agent-ada"), desk.agent("agent-grace")
        r = await http.put(f"/v1/agents/{ada}/presence", headers=auth, json={"presence": "offline"})
        assert r.status_code == 200
        posted = await http.post("/v1/messages", headers=auth, json={"customer": {"external_id": "u-w"}, "text": "hi"})
        conv = await wait_for(lambda: conversation_of(desk, posted.json()["event_id"]))
        assert conv["agent_id"] is None and conv["queue_id"] == f"{desk.tenant}-q-messaging"
        r = await http.put(f"/v1/agents/{grace}/presence", headers=auth, json={"presence": "online"})
        assert r.json() == {"agent_id": grace, "presence": "online", "assigned": 1}
        conv = (await http.get(f"/v1/conversations/{conv['id']}", headers=auth)).json()
        assert conv["agent_id"] == grace
        missing = await http.put("/v1/agents/nobody/presence", headers=auth, json={"presence": "online"})
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
