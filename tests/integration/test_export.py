"""GDPR access: the export holds everything stored about a customer, across channels, and nothing of others."""

from __future__ import annotations

from sqlalchemy import select

from services.router.adapters.db import tables as t
from shared.events import Claim, IdentityKind
from shared.routing_commands import Resolve
from tests.support.http import http_client
from tests.support.runtime import Desk, conversation_of, embedded_desk, inbound, publish, serving, texted, wait_for

desk = embedded_desk


async def test_export_returns_every_stored_text_and_identifier_of_the_customer(desk: Desk) -> None:
    email = Claim(kind=IdentityKind.EMAIL, value="rosa@example.com", verified=True)
    first = texted(desk.tenant, "+14155550142", "my parcel never came", claims=(email,), name="Rosa")
    other = inbound(desk.tenant, "u-someone-else", "unrelated")
    await publish(desk, first, other)
    conv = await wait_for(lambda: conversation_of(desk, first.id))
    await wait_for(lambda: conversation_of(desk, other.id))
    await desk.router.replies.reply(desk.tenant, conv["id"], "We are sending a new one", None, "agent-ada")
    await desk.router.commands.run(desk.tenant, Resolve(conversation_id=conv["id"], note="reshipped"))
    async with (
        serving(desk.router) as base,
        http_client(base_url=base, headers={"Authorization": f"Bearer {desk.key}"}) as http,
    ):
        r = await http.get(f"/v1/customers/{conv['customer_id']}/export")
        assert r.status_code == 200, r.text
        assert "attachment" in r.headers["content-disposition"]
        doc = r.json()
        unknown = await http.get("/v1/customers/no-such-customer/export")
        assert unknown.status_code == 404
    # every text and identifier stored for this customer is in the document, nothing of the other one
    async with desk.router.repo.reader() as conn:
        m, i = t.messages.c, t.identities.c
        texts = {r.text for r in await conn.execute(select(m.text).where(m.customer_id == conv["customer_id"]))}
        idents = {r.value for r in await conn.execute(select(i.value).where(i.customer_id == conv["customer_id"]))}
    dumped = r.text
    assert texts and all(text in dumped for text in texts)
    assert idents and all(value in dumped for value in idents)
    assert "unrelated" not in dumped
    assert doc["customer"]["name"] == "Rosa"
    people = [m["text"] for m in doc["conversations"][0]["messages"] if m["sender_kind"] != "system"]
    assert people[:2] == ["my parcel never came", "We are sending a new one"]  # beside the desk's own
    assert doc["conversations"][0]["resolution_note"] == "reshipped"
    assert any(e["kind"] == "resolved" for e in doc["events"])
