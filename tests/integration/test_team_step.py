"""A queue's step naming another queue (a team), in the running router (embedded, and PostgreSQL + Kafka): the
conversation waits for its own queue's agents, then goes to the team's agent at the step's time, and stays in
its own queue."""

from __future__ import annotations

import time

from tests.support.runtime import Desk, admin_client, conversation_of, desk_fixture, inbound, publish, wait_for

STEP_S = 1.5

desk = desk_fixture(routing_tick_s=0.1)


async def test_a_step_naming_a_team_gives_the_work_to_the_teams_agent_at_its_time(desk: Desk) -> None:
    async with admin_client(desk) as http:
        messaging = f"{desk.tenant}-q-messaging"
        r = await http.post("/v1/queues", json={"name": "Tier 2", "channels": [], "routing": {"rule": {"any": []}}})
        assert r.status_code == 201, r.text
        tier2 = r.json()["id"]
        r = await http.post(
            "/v1/agents",
            json={"name": "Tess", "queue_ids": [tier2], "capacity": {"default": 1}, "presence": "online"},
        )
        assert r.status_code == 201, r.text
        tess = r.json()["id"]
        # nobody of Messaging is online: before the team's step the conversation waits
        r = await http.put(f"/v1/agents/{desk.agent('agent-ada')}/presence", json={"presence": "away"})
        assert r.status_code == 200, r.text
        steps = [{"after_s": 0}, {"after_s": STEP_S, "queue": tier2}, {"after_s": 600}]
        r = await http.patch(f"/v1/queues/{messaging}", json={"routing": {"steps": steps}})
        assert r.status_code == 200, r.text
        assert r.json()["routing"]["steps"][1] == {"after_s": STEP_S, "queue": tier2}

        event = inbound(desk.tenant, "needs-tier-2", "hello")
        started = time.monotonic()
        await publish(desk, event)
        conv = await wait_for(lambda: conversation_of(desk, event.id))
        assert conv["queue_id"] == messaging and conv["agent_id"] is None

        async def taken() -> str | None:
            c = (await http.get(f"/v1/conversations/{conv['id']}")).json()
            return c["agent_id"] if c["agent_id"] else None

        assert await wait_for(taken, timeout_s=15) == tess
        assert time.monotonic() - started >= STEP_S
        again = (await http.get(f"/v1/conversations/{conv['id']}")).json()
        assert again["queue_id"] == messaging  # the team took it; the conversation stayed in its queue

        unusable = [{"after_s": 0}, {"after_s": 60, "queue": ""}]
        r = await http.patch(f"/v1/queues/{messaging}", json={"routing": {"steps": unusable}})
        assert r.status_code == 422 and "queue" in r.text
