"""The customer's language from their message (embedded, and PostgreSQL + Kafka): a customer whose language
nobody set writes in French and goes to the agent who speaks French; the detected language is kept on the
customer with its confidence, and never replaces one the app set."""

from __future__ import annotations

from tests.support.runtime import Desk, admin_client, conversation_of, desk_fixture, inbound, publish, wait_for

desk = desk_fixture()


async def test_a_message_in_french_goes_to_the_agent_who_speaks_french(desk: Desk) -> None:
    async with admin_client(desk) as http:
        ada, grace = desk.agent("agent-ada"), desk.agent("agent-grace")
        assert (await http.patch(f"/v1/agents/{ada}", json={"languages": ["en"]})).status_code == 200
        assert (await http.patch(f"/v1/agents/{grace}", json={"languages": ["fr"]})).status_code == 200
        await http.put(f"/v1/agents/{grace}/presence", json={"presence": "online"})

        french = inbound(
            desk.tenant, "claire", "Bonjour, ma commande n'est toujours pas arrivée, pouvez-vous m'aider ?"
        )
        await publish(desk, french)
        conv = await wait_for(lambda: conversation_of(desk, french.id))
        assert conv["agent_id"] == grace
        customer = (await http.get(f"/v1/customers/{conv['customer_id']}")).json()
        assert customer["language"] == "fr" and customer["language_confidence"] > 0.9

        # a language someone set stands, whatever the customer writes in
        hello = inbound(desk.tenant, "pierre", "hi")  # too short to tell
        await publish(desk, hello)
        first = await wait_for(lambda: conversation_of(desk, hello.id))
        r = await http.patch(f"/v1/customers/{first['customer_id']}", json={"language": "fr"})
        assert r.status_code == 200, r.text
        assert (await http.post(f"/v1/conversations/{first['id']}/resolve", json={"survey": "none"})).status_code == 204
        english = inbound(desk.tenant, "pierre", "Hello, where is my parcel? It should have arrived yesterday.")
        await publish(desk, english)
        conv = await wait_for(lambda: conversation_of(desk, english.id))
        assert conv["agent_id"] == grace
        kept = (await http.get(f"/v1/customers/{conv['customer_id']}")).json()
        assert (kept["language"], kept["language_confidence"]) == ("fr", None)
