"""SLA clocks with a controllable clock: warnings and breaches fire on time and once, business hours and
pauses count, escalation moves the conversation, and a router restart neither loses nor repeats a timer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.router.adapters.db import tables as t
from services.router.bootstrap import build_router
from shared.bus_memory import MemoryBus
from shared.events import Channel, IdentityKind
from shared.settings import Settings
from tests.support.runtime import Desk, admin_client, arrive, inbound, publish, settings_for, started_desk, wait_for

SHAPES = ["embedded", "production"]
MONDAY_9_UTC = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


class Clock:
    """The router's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(params=SHAPES)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    servers = request.getfixturevalue("servers") if request.param == "production" else None
    # timers run only when the test says so: the background tick is far away
    return settings_for(request.param, tmp_path, servers, routing_tick_s=3600)


@pytest.fixture
async def clocked(settings: Settings) -> AsyncIterator[tuple[Desk, Clock]]:
    clock = Clock(MONDAY_9_UTC)
    async with started_desk(settings, clock=clock) as desk:
        yield desk, clock


@pytest.fixture
async def api(clocked: tuple[Desk, Clock]) -> AsyncIterator[httpx.AsyncClient]:
    desk, _ = clocked
    async with admin_client(desk) as http:
        yield http


def chat(desk: Desk, visitor: str, text: str = "hello") -> Any:
    return inbound(desk.tenant, visitor, text, channel=Channel.CHAT, kind=IdentityKind.CHAT_VISITOR)


async def timers(desk: Desk, conversation_id: str) -> dict[str, Any]:
    s = t.sla_clocks.c  # running (on the conversation) and settled
    async with desk.router.repo.reader() as conn:
        rows = await conn.execute(select(t.sla_clocks).where(s.conversation_id == conversation_id))
        return {r.kind: r for r in rows}


async def sla_events(desk: Desk, conversation_id: str) -> list[tuple[str, str, str]]:
    """(agent, type, timer kind) of the feed events SLA clocks produced for the conversation."""
    e = t.agent_events.c
    async with desk.router.repo.reader() as conn:
        rows = await conn.execute(
            select(e.agent_id, e.type, e.data)
            .where(e.conversation_id == conversation_id, e.type.like("sla.%"))
            .order_by(e.seq)
        )
        return [(r.agent_id, r.type, r.data["kind"]) for r in rows]


async def test_first_response_warns_then_breaches_on_time_and_once(clocked: tuple[Desk, Clock]) -> None:
    desk, clock = clocked
    conv = await arrive(desk, chat(desk, "v-sla-1"))
    ada = desk.agent("agent-ada")
    assert conv["agent_id"] == ada
    first = (await timers(desk, conv["id"]))["first_response"]
    assert first.due_at == MONDAY_9_UTC + timedelta(seconds=120)  # chat: 2 minutes
    assert first.warn_at == MONDAY_9_UTC + timedelta(seconds=96)  # at 80 %

    clock.advance(95)
    await desk.router.sla.tick()
    assert await sla_events(desk, conv["id"]) == []
    clock.advance(2)
    await desk.router.sla.tick()
    await desk.router.sla.tick()
    assert await sla_events(desk, conv["id"]) == [
        (ada, "sla.warning", "first_response"),
        ("supervisors", "sla.warning", "first_response"),
    ]
    clock.advance(24)
    await desk.router.sla.tick()
    await desk.router.sla.tick()
    events = await sla_events(desk, conv["id"])
    assert events[2:] == [(ada, "sla.breach", "first_response"), ("supervisors", "sla.breach", "first_response")]
    assert (await timers(desk, conv["id"]))["first_response"].breached_at == clock.now


async def test_both_clocks_of_a_conversation_fire_in_one_tick_and_once(clocked: tuple[Desk, Clock]) -> None:
    """A conversation's response and resolution clocks run side by side on its row: past both deadlines, one
    tick breaches each once (the warning implied), and the next tick fires nothing."""
    desk, clock = clocked
    conv = await arrive(desk, chat(desk, "v-sla-both"))
    ada = desk.agent("agent-ada")
    clock.advance(5 * 3600)  # chat: first response in 2 minutes, resolution in 4 hours
    await desk.router.sla.tick()
    await desk.router.sla.tick()
    assert sorted(await sla_events(desk, conv["id"])) == sorted(
        (agent, "sla.breach", kind) for agent in (ada, "supervisors") for kind in ("first_response", "resolution")
    )
    clocks = await timers(desk, conv["id"])
    for kind in ("first_response", "resolution"):
        assert clocks[kind].warned_at == clocks[kind].breached_at == clock.now, kind
        assert clocks[kind].stopped_at is None, kind  # broken, still running until answered


async def test_a_conversation_folded_into_another_by_a_merge_fires_no_clock(
    clocked: tuple[Desk, Clock], api: httpx.AsyncClient
) -> None:
    """Merging two customers folds one open conversation into the other: the survivor's promises still run and
    fire, the folded one's are carried by it and fire nothing (an unmerge opens it again)."""
    desk, clock = clocked
    kept = await arrive(desk, chat(desk, "v-sla-kept"))
    folded = await arrive(desk, chat(desk, "v-sla-folded"))
    merged = await api.post(f"/v1/customers/{kept['customer_id']}/merge", json={"customer_id": folded["customer_id"]})
    assert merged.status_code == 200, merged.text
    clock.advance(5 * 3600)  # past every deadline of both
    await desk.router.sla.tick()
    await desk.router.sla.tick()
    assert await sla_events(desk, folded["id"]) == []
    assert {kind for _, _, kind in await sla_events(desk, kept["id"])} == {"first_response", "resolution"}


async def test_an_answer_stops_the_clock_and_pending_pauses_resolution(
    clocked: tuple[Desk, Clock], api: httpx.AsyncClient
) -> None:
    desk, clock = clocked
    event = chat(desk, "v-sla-2")
    conv = await arrive(desk, event)
    clock.advance(60)
    reply = await api.post(f"/v1/conversations/{conv['id']}/reply", json={"text": "On it", "pending": True})
    assert reply.status_code == 202, reply.text
    clocks = await timers(desk, conv["id"])
    assert clocks["first_response"].met is True and clocks["first_response"].stopped_at == clock.now
    resolution = clocks["resolution"]
    assert resolution.paused_at == clock.now and resolution.remaining_s == pytest.approx(4 * 3600 - 60)

    clock.advance(5 * 3600)  # past the resolution target while paused: no breach
    await desk.router.sla.tick()
    assert [e for e in await sla_events(desk, conv["id"]) if e[2] == "resolution"] == []

    # the customer writes: resolution resumes with what it had left, and a next-response clock starts
    again = chat(desk, "v-sla-2", "still broken")
    await publish(desk, again)

    async def resumed() -> Any:
        clocks = await timers(desk, conv["id"])
        return clocks if "next_response" in clocks and clocks["resolution"].paused_at is None else None

    clocks = await wait_for(resumed)
    assert clocks["resolution"].due_at == clock.now + timedelta(seconds=4 * 3600 - 60)
    assert clocks["next_response"].due_at == clock.now + timedelta(seconds=120)
    resolved = await api.post(f"/v1/conversations/{conv['id']}/resolve", json={"note": "reset the router"})
    assert resolved.status_code == 204
    clocks = await timers(desk, conv["id"])
    assert clocks["next_response"].stopped_at == clocks["resolution"].stopped_at == clock.now
    assert clocks["next_response"].met is True and clocks["resolution"].met is True


async def test_deadlines_count_business_hours(clocked: tuple[Desk, Clock], api: httpx.AsyncClient) -> None:
    desk, clock = clocked
    hours = {"timezone": "Europe/Paris", "week": {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}}
    patched = await api.patch(
        f"/v1/queues/{desk.tenant}-q-messaging",
        json={"routing": {"hours": hours, "sla": {"first_response_s": {"default": 600}}}},
    )
    assert patched.status_code == 200, patched.text
    clock.now = datetime(2026, 11, 27, 15, 55, tzinfo=UTC)  # Friday 16:55 in Paris
    conv = await arrive(desk, chat(desk, "v-sla-3"))
    first = (await timers(desk, conv["id"]))["first_response"]
    assert first.due_at == datetime(2026, 11, 30, 8, 5, tzinfo=UTC)  # Monday 09:05 Paris
    clock.now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)  # Sunday: nothing fires
    await desk.router.sla.tick()
    assert await sla_events(desk, conv["id"]) == []
    clock.now = datetime(2026, 11, 30, 8, 6, tzinfo=UTC)
    await desk.router.sla.tick()
    kinds = [(e[1], e[2]) for e in await sla_events(desk, conv["id"]) if e[0] == "supervisors"]
    assert kinds == [("sla.breach", "first_response")]  # a breach carries its warning: one event


async def test_a_breach_escalates_a_waiting_conversation_to_the_escalation_queue(
    clocked: tuple[Desk, Clock], api: httpx.AsyncClient
) -> None:
    desk, clock = clocked
    escalations = await api.post(
        "/v1/queues", json={"name": "Escalations", "routing": {"rule": {"attr": "x", "eq": 1}}}
    )
    assert escalations.status_code == 201, escalations.text
    target = escalations.json()["id"]
    patched = await api.patch(
        f"/v1/queues/{desk.tenant}-q-messaging",
        json={"routing": {"sla": {"on_warning": {"raise_priority": True}, "on_breach": {"escalate_to": target}}}},
    )
    assert patched.status_code == 200, patched.text
    await api.put(f"/v1/agents/{desk.agent('agent-ada')}/presence", json={"presence": "away"})
    conv = await arrive(desk, chat(desk, "v-sla-4"))
    assert conv["agent_id"] is None and conv["queue_id"] == f"{desk.tenant}-q-messaging"
    clock.advance(121)
    await desk.router.sla.tick()

    async def moved() -> bool:  # the tenant's routing owner applies the escalation from the command log
        return bool((await api.get(f"/v1/conversations/{conv['id']}")).json()["queue_id"] == target)

    await wait_for(moved)
    kinds = [e["kind"] for e in (await api.get(f"/v1/customers/{conv['customer_id']}/timeline")).json()["items"]]
    assert "sla_breach" in kinds and "escalated" in kinds
    e = t.conversations.c
    async with desk.router.repo.reader() as conn:
        escalated_at = (await conn.execute(select(e.escalated_at).where(e.id == conv["id"]))).scalar_one()
    assert escalated_at == clock.now


@pytest.mark.parametrize("shape", SHAPES)
async def test_a_restart_neither_loses_nor_repeats_a_timer(
    shape: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    servers = request.getfixturevalue("servers") if shape == "production" else None
    settings = settings_for(shape, tmp_path, servers, routing_tick_s=3600)
    clock = Clock(MONDAY_9_UTC)
    bus = MemoryBus()
    first = build_router(settings, bus=None if servers else bus, clock=clock)
    async with started_desk(settings, router=first) as desk:
        conv = await arrive(desk, chat(desk, "v-sla-5"))
    # the router is down while the warning falls due; two routers come up, one after the other, and tick
    clock.advance(100)
    for _ in range(2):
        router = build_router(settings, bus=None if servers else bus, clock=clock)
        await router.start()
        try:
            for _ in range(3):
                await router.sla.tick()
            events = await sla_events(Desk(router, desk.tenant, desk.key), conv["id"])
        finally:
            await router.stop()
        assert events == [
            (desk.agent("agent-ada"), "sla.warning", "first_response"),
            ("supervisors", "sla.warning", "first_response"),
        ]
