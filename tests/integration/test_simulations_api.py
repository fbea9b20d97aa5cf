"""What if over the HTTP API (embedded desk): a supervisor posts a desk, a proposal and traffic, gets 202 and
an id at once, and reads the report once the worker process has run it; a desk the simulator cannot use is
refused with 422 naming the field; a bad trace line fails the run with the line named; another tenant's run is
not found; an agent may not run simulations."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx

from services.router.adapters.db.api_keys import generate_key, store_key
from services.router.adapters.db.seed import seed_demo
from tests.support.runtime import Desk, admin_api, embedded_desk

DESK = {
    "queues": [
        {"id": "care", "name": "Care", "is_default": True, "routing": {"sla": {"first_response_s": {"chat": 30}}}}
    ],
    "agents": [{"id": "care", "name": "Care team", "count": 2, "queue_ids": ["care"], "capacity": {"default": 1}}],
}
PROPOSAL = {**DESK, "agents": [{**DESK["agents"][0], "count": 3}]}
TRAFFIC = {
    "start": "2026-01-05T08:00:00Z",
    "hours": 2,
    "streams": [{"channel": "chat", "rate_per_hour": 60, "handle": {"distribution": "exponential", "mean_s": 100}}],
}


desk = embedded_desk


http = admin_api


async def finished(http: httpx.AsyncClient, simulation_id: str, timeout_s: float = 60) -> dict[str, Any]:
    async with asyncio.timeout(timeout_s):
        while True:
            r = await http.get(f"/v1/simulations/{simulation_id}")
            assert r.status_code == 200, r.text
            if r.json()["status"] in ("done", "failed"):
                return dict(r.json())
            await asyncio.sleep(0.2)


async def key_for(desk: Desk, tenant: str, role: str, **extra: Any) -> dict[str, str]:
    key = generate_key()
    await store_key(desk.router.db, tenant, key, role, "test", datetime.now(UTC), **extra)
    return {"Authorization": f"Bearer {key}"}


async def test_a_supervisor_posts_a_proposal_and_reads_the_report_when_done(
    desk: Desk, http: httpx.AsyncClient
) -> None:
    supervisor = await key_for(desk, desk.tenant, "supervisor")
    r = await http.post(
        "/v1/simulations", json={"desk": DESK, "proposal": PROPOSAL, "traffic": TRAFFIC}, headers=supervisor
    )
    assert r.status_code == 202, r.text
    assert r.json()["status"] in ("queued", "running")

    done = await finished(http, r.json()["id"])

    assert done["status"] == "done", done
    report = done["report"]
    assert set(report) == {"baseline", "proposal", "comparison"}
    assert report["baseline"]["total"]["arrived"] == report["proposal"]["total"]["arrived"] > 60
    assert report["comparison"]["total"]["wait_mean_s"]["difference"] < 0, "a third agent shortens waits"


async def test_a_desk_the_simulator_cannot_use_is_refused_with_422_naming_the_field(http: httpx.AsyncClient) -> None:
    bad = {**DESK, "agents": [{**DESK["agents"][0], "queue_ids": ["nowhere"]}]}
    r = await http.post("/v1/simulations", json={"desk": bad, "traffic": TRAFFIC})
    assert r.status_code == 422, r.text
    assert "agents[0].queue_ids" in r.json()["detail"] and "nowhere" in r.json()["detail"]

    r = await http.post("/v1/simulations", json={"desk": DESK})
    assert r.status_code == 422, r.text
    assert "traffic" in r.json()["detail"]


async def test_a_bad_trace_line_fails_the_run_and_names_the_line(http: httpx.AsyncClient) -> None:
    trace = [{"at": "2026-01-05T08:00:00Z", "channel": "chat", "handle_s": 60}, {"at": 5, "handle_s": 60}]
    r = await http.post("/v1/simulations", json={"desk": DESK, "trace": trace})
    assert r.status_code == 202, r.text

    done = await finished(http, r.json()["id"])

    assert done["status"] == "failed"
    assert "trace:2: channel: required" in done["error"]


async def test_another_tenants_run_is_not_found_and_agents_may_not_run_simulations(
    desk: Desk, http: httpx.AsyncClient
) -> None:
    r = await http.post("/v1/simulations", json={"desk": DESK, "traffic": TRAFFIC})
    assert r.status_code == 202, r.text
    mine = r.json()["id"]
    other = f"{desk.tenant}-other"
    await seed_demo(desk.router.db, datetime.now(UTC), tenant_id=other)

    r = await http.get(f"/v1/simulations/{mine}", headers=await key_for(desk, other, "admin"))
    assert r.status_code == 404, r.text
    r = await http.get("/v1/simulations/not-a-run")
    assert r.status_code == 404, r.text
    agent = await key_for(desk, desk.tenant, "agent", agent_id=desk.agent("agent-ada"))
    r = await http.post("/v1/simulations", json={"desk": DESK, "traffic": TRAFFIC}, headers=agent)
    assert r.status_code == 403, r.text
    assert (await finished(http, mine))["status"] == "done", "the owner still reads it"
