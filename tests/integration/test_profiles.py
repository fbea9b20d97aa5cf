"""Routing profiles through the API (embedded, and PostgreSQL + Kafka): an agent's capacity in weighted units
across channels, shown on the agent; a profile change applies to its agents at once."""

from __future__ import annotations

from tests.support.runtime import Desk, admin_client, conversation_of, desk_fixture, inbound, publish, wait_for

desk = desk_fixture(routing_tick_s=3600)


async def test_capacity_in_units_shown_on_the_agent_and_changed_for_all_at_once(desk: Desk) -> None:
    async with admin_client(desk) as http:
        bad = await http.post("/v1/profiles", json={"name": "Broken", "capacity": 2, "weights": {"chat": 0}})
        assert bad.status_code == 422
        r = await http.post("/v1/profiles", json={"name": "Two units", "capacity": 2, "weights": {"default": 1}})
        assert r.status_code == 201, r.text
        profile = r.json()
        ada = desk.agent("agent-ada")
        assert (await http.patch(f"/v1/agents/{ada}", json={"profile_id": "nope"})).status_code == 409
        r = await http.patch(f"/v1/agents/{ada}", json={"profile_id": profile["id"], "capacity": {"default": 9}})
        assert r.status_code == 200, r.text

        held = []
        for i in range(3):  # chats from three customers: two units fit, the third waits
            event = inbound(desk.tenant, f"unit-{i}", "hello")
            await publish(desk, event)
            held.append(await wait_for(lambda e=event: conversation_of(desk, e.id)))
        assert [c["agent_id"] for c in held] == [ada, ada, None]
        shown = (await http.get(f"/v1/agents/{ada}")).json()
        assert shown["profile_id"] == profile["id"]
        assert shown["load"] == {"channels": {"in_app": 2}, "units": 2.0, "capacity_units": 2.0}

        r = await http.patch(f"/v1/profiles/{profile['id']}", json={"config": {"capacity": 3}})
        assert r.status_code == 200, r.text
        third = await wait_for(lambda: _held_by(desk, held[2]["id"], ada), timeout_s=5)
        assert third
        assert (await http.get(f"/v1/agents/{ada}")).json()["load"]["units"] == 3.0
        listed = (await http.get("/v1/profiles")).json()["items"]
        assert [p["name"] for p in listed] == ["Two units"]


async def _held_by(desk: Desk, conversation_id: str, agent_id: str) -> bool:
    async with desk.router.repo.reader() as conn:
        from services.router.adapters.views import queries

        found = await queries.conversation(conn, desk.tenant, conversation_id)
        return found is not None and found["agent_id"] == agent_id
