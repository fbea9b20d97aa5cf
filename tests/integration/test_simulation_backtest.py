"""Backtest: the real router on the embedded desk serves a burst of customers (agents online, one of them away
for a while, every conversation resolved after its own handle time); ``switchboard history`` turns that window
into a trace, and the simulator, with the same configuration, replays it. Its waits and SLA attainment are the
recorded ones within 10%.

What "recorded" means here: the live SLA clock stops at an agent's first reply, and these agents never write.
The simulator counts the first response when an agent takes the conversation (docs/simulation.md, "What is
simplified"), so the recorded figures are taken the same way from the store: queued (``queued_at``) → taken
(the assignment's ``accepted_at``), and the SLA met when that is within the queue's promise."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from sqlalchemy import func, select

from services import cli as switchboard
from services.router.adapters.db import tables as t
from services.router.adapters.db.seed import MESSAGING
from services.router.simulation.desk import desk_of
from services.router.simulation.report import percentile, report
from services.router.simulation.simulator import simulate
from services.router.simulation.trace import read_trace
from shared.routing_commands import Resolve, SetPresence
from tests.support.runtime import Desk, admin_client, inbound, publish, settings_for, started_desk

ARRIVALS = 30
RATE_PER_S = 1.0
HANDLE_MEAN_S = 1.5  # two agents taking one conversation at a time: about 75% busy, so waits vary
PROMISE_S = 2.0  # the Messaging queue's first-response promise for in-app conversations
TOLERANCE = 0.10


def the_desk(tenant: str) -> dict[str, Any]:
    """The desk as the test configures it through the API, in the simulator's desk JSON."""
    messaging, email, general = (f"{tenant}-q-{name}" for name in ("messaging", "email", "general"))
    one_at_a_time = {"default": 1}
    return {
        "queues": [
            {"id": messaging, "name": "Messaging", "channels": MESSAGING, "routing": ROUTING},
            {"id": email, "name": "Email", "channels": ["email"]},
            {"id": general, "name": "General", "is_default": True},
        ],
        "agents": [
            {"id": f"{tenant}-agent-ada", "name": "Ada", "queue_ids": [messaging, email, general],
             "capacity": one_at_a_time},
            {"id": f"{tenant}-agent-grace", "name": "Grace", "queue_ids": [messaging, general],
             "capacity": one_at_a_time},
            {"id": f"{tenant}-agent-alan", "name": "Alan", "queue_ids": [email, general], "presence": "offline"},
        ],
    }  # fmt: skip


ROUTING = {"sla": {"first_response_s": {"in_app": PROMISE_S}}}


async def configure(http: httpx.AsyncClient, desk: Desk) -> None:
    r = await http.patch(f"/v1/queues/{desk.tenant}-q-messaging", json={"routing": ROUTING})
    assert r.status_code == 200, r.text
    for name in ("agent-ada", "agent-grace"):
        r = await http.patch(f"/v1/agents/{desk.agent(name)}", json={"capacity": {"default": 1}})
        assert r.status_code == 200, r.text


async def presence(desk: Desk, name: str, value: Literal["online", "away", "offline"]) -> None:
    await desk.router.commands.run(desk.tenant, SetPresence(agent_id=desk.agent(name), presence=value))


async def serve_customers(desk: Desk, plan: list[tuple[float, float]]) -> None:
    """Customers write at the planned offsets; each conversation is resolved its planned handle time after an
    agent took it; Grace steps away from 10 s to 16 s."""
    handles: dict[str, float] = {}
    resolving: set[str] = set()
    tasks: list[asyncio.Task[None]] = []

    async def resolve(conversation_id: str, at: datetime) -> None:
        await asyncio.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds()))
        await desk.router.commands.run(desk.tenant, Resolve(conversation_id=conversation_id, survey="none"))

    async def resolver() -> None:
        s, m = t.assignments.c, t.messages.c
        while True:
            async with desk.router.repo.reader() as conn:
                rows = await conn.execute(
                    select(s.conversation_id, s.accepted_at, m.event_id)
                    .join(t.messages, m.conversation_id == s.conversation_id)
                    .where(s.tenant_id == desk.tenant, s.accepted_at.is_not(None))
                )
                for r in rows:
                    if r.conversation_id not in resolving and r.event_id in handles:
                        resolving.add(r.conversation_id)
                        at = r.accepted_at + timedelta(seconds=handles[r.event_id])
                        tasks.append(asyncio.create_task(resolve(r.conversation_id, at)))
            await asyncio.sleep(0.02)

    async def grace_steps_away() -> None:
        await asyncio.sleep(10)
        await presence(desk, "agent-grace", "away")
        await asyncio.sleep(6)
        await presence(desk, "agent-grace", "online")

    watching = asyncio.create_task(resolver())
    away = asyncio.create_task(grace_steps_away())
    began = asyncio.get_running_loop().time()
    for n, (offset, handle_s) in enumerate(plan):
        await asyncio.sleep(max(0.0, began + offset - asyncio.get_running_loop().time()))
        event = inbound(desk.tenant, f"backtest-{n}", "hello?")
        handles[event.id] = handle_s
        await publish(desk, event)
    await away
    async with asyncio.timeout(30):
        while len(resolving) < len(plan) or not all(task.done() for task in tasks):
            await asyncio.sleep(0.05)
    watching.cancel()
    for task in tasks:
        task.result()  # a failed resolve fails the test


async def recorded_figures(desk: Desk) -> tuple[list[float], float]:
    """Waits (queued → taken) and the SLA attainment, from the store."""
    c, s = t.conversations.c, t.assignments.c
    async with desk.router.repo.reader() as conn:
        rows = (
            await conn.execute(
                select(c.queued_at, func.min(s.accepted_at).label("taken"))
                .join(t.assignments, s.conversation_id == c.id)
                .where(c.tenant_id == desk.tenant, s.accepted_at.is_not(None))
                .group_by(c.id, c.queued_at)
            )
        ).all()
    waits = sorted((r.taken - r.queued_at).total_seconds() for r in rows)
    return waits, sum(w <= PROMISE_S for w in waits) / len(waits)


def close(simulated: float, recorded: float) -> bool:
    return abs(simulated - recorded) <= TOLERANCE * recorded


async def test_a_recorded_window_replayed_by_the_simulator_gives_the_recorded_waits_and_sla(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rnd = random.Random(24)
    offsets = [0.5]
    while len(offsets) < ARRIVALS:
        offsets.append(offsets[-1] + rnd.expovariate(RATE_PER_S))
    plan = [(offset, round(min(5.0, max(0.3, rnd.expovariate(1 / HANDLE_MEAN_S))), 2)) for offset in offsets]
    settings = settings_for("embedded", tmp_path, survey_kind="none")
    async with started_desk(settings) as desk, admin_client(desk) as http:
        await configure(http, desk)
        start = datetime.now(UTC)
        await presence(desk, "agent-grace", "online")
        await serve_customers(desk, plan)
        end = datetime.now(UTC)
        waits, sla = await recorded_figures(desk)
    assert len(waits) == ARRIVALS
    assert waits[len(waits) // 2] > 0.2, "customers waited: the figures compare queueing, not latency"

    # switchboard history, as a supervisor would run it on the store
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", settings.database_url)
    trace = tmp_path / "window.jsonl"
    window = ["--tenant", desk.tenant, "--from", start.isoformat(), "--to", end.isoformat(), "--out", str(trace)]
    assert await asyncio.to_thread(switchboard.main, ["history", *window]) == 0
    lines = trace.read_text().splitlines()
    assert sum('"presence"' in line for line in lines) == 3, "Grace: online, away, online"
    assert all("handle_s" in json.loads(line) for line in lines if '"presence"' not in line)

    workload = read_trace(lines, start=start.timestamp(), hours=1)
    run = simulate(desk_of(the_desk(desk.tenant)), workload, seed=1)
    total = report(run)["total"]
    simulated = sorted(
        c.answered_at - c.arrival.at for c in run.recorded.conversations.values() if c.answered_at is not None
    )
    assert total["arrived"] == total["answered"] == ARRIVALS
    figures = {
        "wait p50": (percentile(simulated, 50), percentile(waits, 50)),
        "wait p90": (percentile(simulated, 90), percentile(waits, 90)),
        "SLA attainment": (total["sla_attainment"], sla),
    }
    shown = ", ".join(f"{name}: simulated {sim}, recorded {rec}" for name, (sim, rec) in figures.items())
    for name, (sim, rec) in figures.items():
        assert sim is not None and rec is not None and close(sim, rec), f"{name} differs ({shown})"
