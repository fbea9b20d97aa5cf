"""Durable outgoing webhooks: a receiver that is down for minutes, or restarts with the router, still gets every
routing event once it is back, in order per conversation; one given up after the retry window is listed for a
supervisor and redelivered through the API."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.router.adapters.db.api_keys import generate_key, store_key
from services.router.adapters.db.seed import seed_demo
from services.router.bootstrap import build_router
from services.router.entrypoints.http import webhook_deliveries
from services.router.entrypoints.http.app import create_app
from shared.bus import Consumer
from shared.bus_memory import MemoryBus
from shared.settings import Settings
from shared.webhook_signing import verify
from tests.support.consumers import reading
from tests.support.runtime import (
    Desk,
    admin_client,
    arrive,
    inbound,
    publish,
    serve_app,
    settings_for,
    started_desk,
    wait_for,
)

SECRET = "webhook-secret-for-tests"
SHAPES = ["embedded", "production"]


class RouterTime:
    """How the router's time passes in a test. Embedded: the router's own clock, moved on by the test, with the
    default backoff (1 s doubling to an hour): ten minutes pass in a second. Production shares PostgreSQL with
    other tests' tenants, whose timers a router whose clock jumped would fire: there time is real, and the
    backoff, the retry window and the scenario's minutes are scaled down by ``SCALE`` (a minute in 0.3 s)."""

    SCALE = 0.005

    def __init__(self, shape: str) -> None:
        self.moved = shape == "embedded"
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now if self.moved else datetime.now(UTC)

    def settings(self, window: timedelta = timedelta(hours=24)) -> dict[str, float]:
        scale = 1.0 if self.moved else self.SCALE
        return {
            "webhook_retry_first_s": 1.0 * scale,
            "webhook_retry_max_s": 3600.0 * scale,
            "webhook_retry_window_h": window / timedelta(hours=1) * scale,
        }

    async def run(self, total: timedelta, step: timedelta = timedelta(seconds=20)) -> None:
        """``total`` of the router's time goes by, in ``step``s, the router's loops running after each."""
        if not self.moved:
            await asyncio.sleep(total.total_seconds() * self.SCALE)
            return
        end = self.now + total
        while self.now < end:
            self.now = min(end, self.now + step)
            await asyncio.sleep(0.05)


@dataclass
class Receiver:
    """A webhook receiver that is up or down (503), recording every attempt and every event it accepted."""

    up: bool = False
    attempts: list[str] = field(default_factory=list)  # event ids, up or down
    accepted: list[dict[str, Any]] = field(default_factory=list)
    bodies: dict[str, bytes] = field(default_factory=dict)

    async def hook(self, request: Request) -> JSONResponse:
        body = await request.body()
        event = orjson.loads(body)
        assert verify(SECRET, body, request.headers["switchboard-signature"])
        assert request.headers["switchboard-event-id"] == event["id"]
        self.attempts.append(event["id"])
        if not self.up:
            return JSONResponse({}, status_code=503)
        self.accepted.append(event)
        self.bodies[event["id"]] = body
        return JSONResponse({"ok": True})

    def ids(self) -> list[str]:
        return [e["id"] for e in self.accepted]


@asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[str]:
    async with serve_app(Starlette(routes=[Route("/hook", receiver.hook, methods=["POST"])])) as base:
        yield f"{base}/hook"


@asynccontextmanager
async def api(desk: Desk) -> AsyncIterator[str]:
    """The router's API with the webhook delivery routes (included here until the app includes them)."""
    app = create_app(desk.router, manage_lifecycle=False)
    if not any(getattr(r, "path", None) == "/v1/webhook-deliveries" for r in app.routes):
        app.include_router(webhook_deliveries.router)
    async with serve_app(app) as base:
        yield base


def hooked(shape: str, tmp_path: Path, request: pytest.FixtureRequest, url: str, **overrides: Any) -> Settings:
    servers = request.getfixturevalue("servers") if shape == "production" else None
    return settings_for(
        shape,
        tmp_path,
        servers,
        webhook_urls=url,
        webhook_secret=SECRET,
        webhook_delivery_tick_s=0.02,
        **overrides,
    )


async def topic_ids(
    consumer: Consumer, seen: dict[str, dict[str, Any]], tenant: str | None = None
) -> dict[str, dict[str, Any]]:
    """Every event on routing.assignments so far (of ``tenant`` when given), read by a consumer of the test's
    own: the expected set. On the shared database a router whose clock is moved on also fires other tests'
    tenants' timers: their events are on the topic and sent too, but only the test's tenant is checked."""
    for record in await consumer.getmany(0.1, 1000):
        event = orjson.loads(record.value)
        if tenant is None or event["tenant"] == tenant:
            seen[event["id"]] = event
    return seen


def per_conversation(events: list[dict[str, Any]], types: set[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in events:
        if e["conversation_id"] and e["type"] in types:
            out.setdefault(e["conversation_id"], []).append(e["type"])
    return out


@pytest.mark.parametrize("shape", SHAPES)
async def test_a_receiver_down_for_ten_minutes_gets_every_event_once_back_in_order_per_conversation(
    shape: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    receiver, clock = Receiver(up=False), RouterTime(shape)
    async with receiving(receiver) as url:
        settings = hooked(shape, tmp_path, request, url, **clock.settings())
        async with (
            started_desk(settings, clock=clock) as desk,
            admin_client(desk) as http,
            reading(desk.bus, desk.router.topics.assignments) as topic,
        ):
            conversations = []
            for n in range(3):  # each conversation: assigned, a second message, resolved
                first = inbound(desk.tenant, f"down-{n}", "my parcel never came")
                conv = await arrive(desk, first)
                conversations.append(conv["id"])
            await publish(desk, *(inbound(desk.tenant, f"down-{n}", "any news?") for n in range(3)))
            await asyncio.sleep(0.5)
            for conv_id in conversations:
                assert (await http.post(f"/v1/conversations/{conv_id}/resolve", json={})).status_code == 204

            async def heads_tried() -> bool:
                return len(set(receiver.attempts)) >= 3

            await wait_for(heads_tried)
            await clock.run(timedelta(minutes=10))  # ten minutes of the router's time, receiver down
            down_attempts = list(receiver.attempts)
            receiver.up = True
            expected: dict[str, dict[str, Any]] = {}  # the tenant's events on the topic
            for _ in range(400):  # the router's time goes on until every one of them is in
                if set(await topic_ids(topic, expected, desk.tenant)) <= set(receiver.ids()):
                    break
                await clock.run(timedelta(minutes=1), timedelta(seconds=20))
            for _ in range(50):  # the clock stands still now: the topic's last records settle
                await asyncio.sleep(0.1)
                if set(await topic_ids(topic, expected, desk.tenant)) <= set(receiver.ids()):
                    break

    assert len(down_attempts) > 3 * 5, "retried while down, not given up"
    ours_by_id = {i: e for i, e in expected.items() if e["conversation_id"] in conversations}
    tried_while_down = {ours_by_id[i]["type"] for i in down_attempts if i in ours_by_id}
    assert tried_while_down == {"assignment"}, "only each conversation's first event was tried; the rest waited"
    received = Counter(e["id"] for e in receiver.accepted if e["tenant"] == desk.tenant)
    assert received == Counter(set(expected)), "every event of the tenant, each once"
    ours = [e for e in receiver.accepted if e["conversation_id"] in conversations]
    assert per_conversation(ours, {"assignment", "message", "unassignment"}) == {
        conv_id: ["assignment", "message", "unassignment"] for conv_id in conversations
    }
    for conv_id in conversations:
        times = [e["at"] for e in receiver.accepted if e["conversation_id"] == conv_id]
        assert times == sorted(times), "each conversation's events in the order they happened"


@pytest.mark.parametrize("shape", SHAPES)
async def test_a_delivery_given_up_after_the_retry_window_is_listed_failed_and_redelivered_by_a_supervisor(
    shape: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Embedded: the default 24-hour window, a day of the router's time. Production runs in real time: a
    # ten-minute window, scaled (RouterTime).
    window = timedelta(hours=24) if shape == "embedded" else timedelta(minutes=10)
    receiver, clock = Receiver(up=False), RouterTime(shape)
    async with receiving(receiver) as url:
        settings = hooked(shape, tmp_path, request, url, **clock.settings(window))
        async with (
            started_desk(settings, clock=clock) as desk,
            reading(desk.bus, desk.router.topics.assignments) as topic,
            api(desk) as base,
            httpx.AsyncClient(base_url=base, timeout=10) as http,
        ):
            supervisor = generate_key()
            await store_key(desk.router.db, desk.tenant, supervisor, "supervisor", "sup", datetime.now(UTC))
            other = generate_key()
            await seed_demo(desk.router.db, datetime.now(UTC), tenant_id=f"{desk.tenant}-x")
            await store_key(desk.router.db, f"{desk.tenant}-x", other, "admin", "other", datetime.now(UTC))
            as_supervisor = {"Authorization": f"Bearer {supervisor}"}
            message = inbound(desk.tenant, "never-heard-back", "hello?")
            conv = await arrive(desk, message)
            assigned = await wait_for(lambda: topic_ids(topic, {}, desk.tenant))
            (assignment,) = [e for e in assigned.values() if e["type"] == "assignment"]
            await wait_for(lambda: asyncio.sleep(0, result=assignment["id"] in receiver.attempts))
            await clock.run(window * 1.1, window / 50)  # past the retry window, receiver down

            async def failed() -> list[dict[str, Any]]:
                r = await http.get("/v1/webhook-deliveries", params={"state": "failed"}, headers=as_supervisor)
                assert r.status_code == 200, r.text
                return [d for d in r.json()["items"] if d["event_id"] == assignment["id"]]

            (dead,) = await wait_for(failed)
            assert dead["state"] == "failed" and dead["last_status"] == 503 and dead["attempts"] >= 5
            assert dead["conversation_id"] == conv["id"] and dead["event"] == assignment
            assert dead["url"] == url and dead["finished_at"] is not None
            assert receiver.accepted == []

            foreign = await http.post(
                f"/v1/webhook-deliveries/{dead['id']}/redeliver", headers={"Authorization": f"Bearer {other}"}
            )
            assert foreign.status_code == 404, "another tenant's delivery is not found"
            listed = await http.get("/v1/webhook-deliveries", headers={"Authorization": f"Bearer {other}"})
            assert listed.status_code == 200 and assignment["id"] not in listed.text

            receiver.up = True
            again = await http.post(f"/v1/webhook-deliveries/{dead['id']}/redeliver", headers=as_supervisor)
            assert again.status_code == 202, again.text
            assert again.json()["redeliveries"] == 1

            async def delivered() -> list[dict[str, Any]]:
                r = await http.get("/v1/webhook-deliveries", params={"state": "delivered"}, headers=as_supervisor)
                return [d for d in r.json()["items"] if d["id"] == dead["id"]]

            (done,) = await wait_for(delivered)
            assert done["redeliveries"] == 1 and done["last_status"] == 200

    assert receiver.ids().count(assignment["id"]) == 1
    assert orjson.loads(receiver.bodies[assignment["id"]]) == assignment


@pytest.mark.parametrize("shape", SHAPES)
async def test_pending_deliveries_survive_a_router_restart(
    shape: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    receiver = Receiver(up=False)
    async with receiving(receiver) as url:
        # real time, small steps: the retries of the second router come within a second
        settings = hooked(shape, tmp_path, request, url, webhook_retry_first_s=0.1, webhook_retry_max_s=0.5)
        async with started_desk(settings) as desk, reading(desk.bus, desk.router.topics.assignments) as topic:
            firsts = [inbound(desk.tenant, f"restart-{n}", "hello") for n in range(2)]
            for event in firsts:
                await arrive(desk, event)
            await publish(desk, *(inbound(desk.tenant, f"restart-{n}", "still there?") for n in range(2)))

            async def four_on_the_topic() -> dict[str, dict[str, Any]] | None:
                seen = await topic_ids(topic, expected, desk.tenant)
                return seen if len(seen) >= 4 else None

            expected: dict[str, dict[str, Any]] = {}
            await wait_for(four_on_the_topic)
            await wait_for(lambda: asyncio.sleep(0, result=len(set(receiver.attempts)) >= 2))
            await asyncio.sleep(0.5)  # the consumer has queued the messages and committed its offsets
        assert receiver.accepted == []  # the first router stopped with everything pending

        receiver.up = True
        bus = MemoryBus() if shape == "embedded" else None  # embedded: the events are in the database only
        second = build_router(settings, bus=bus)
        await second.start()
        try:
            await wait_for(lambda: asyncio.sleep(0, result=set(expected) <= set(receiver.ids())))
            await asyncio.sleep(0.3)
        finally:
            await second.stop()

    assert Counter(e["id"] for e in receiver.accepted if e["tenant"] == desk.tenant) == Counter(set(expected))
    conversations = {e["conversation_id"] for e in expected.values()}
    assert per_conversation(receiver.accepted, {"assignment", "message"}) == {
        c: ["assignment", "message"] for c in conversations
    }
