"""Delivery statuses of a reply reach the router in any order: Kafka keeps a conversation's statuses in order,
but providers do not report them in order (a WhatsApp "delivered" callback may beat the connector's own "sent",
a retried send reports "sent" again after the device confirmed delivery). A reply's state only moves forward
(queued < sent < delivered; failed is final), so the state shown is the furthest one reported, whatever came
last: a last-write-wins update would show a delivered reply as merely sent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from shared.bus import Outgoing
from shared.events import Channel
from shared.outbound import DeliveryState, DeliveryStatus, encode
from tests.support.runtime import Desk, admin_api, arrive, desk_fixture, inbound, wait_for

desk = desk_fixture()
http = admin_api


async def reply(http: httpx.AsyncClient, conversation_id: str, text: str) -> str:
    r = await http.post(f"/v1/conversations/{conversation_id}/reply", json={"text": text})
    assert r.status_code == 202, r.text
    return str(r.json()["message_id"])


async def report(desk: Desk, conv: dict[str, Any], message_id: str, *states: str) -> None:
    """The connector's reports for ``message_id``, published in this order in one go, keyed as connectors key
    them (the conversation id, so they share a partition and arrive in this order)."""
    records = [
        Outgoing(
            desk.router.topics.status,
            encode(
                DeliveryStatus(
                    tenant=desk.tenant,
                    message_id=message_id,
                    conversation_id=conv["id"],
                    channel=Channel.IN_APP,
                    state=DeliveryState(state),
                    provider_message_id=f"prov-{message_id}-{n}",
                    error="provider gave up" if state == "failed" else None,
                    time=datetime.now(UTC),
                )
            ),
            conv["id"].encode(),
        )
        for n, state in enumerate(states)
    ]
    await desk.bus.publish(records)


async def states(http: httpx.AsyncClient, conversation_id: str) -> dict[str, str]:
    r = await http.get(f"/v1/conversations/{conversation_id}")
    assert r.status_code == 200, r.text
    return {m["id"]: m["status"] for m in r.json()["messages"] if m["direction"] == "outbound"}


async def settled(desk: Desk, http: httpx.AsyncClient, conv: dict[str, Any]) -> dict[str, str]:
    """The replies' states once every report published so far was applied: a marker reply's "sent", published
    after them on the same partition, is seen last."""
    marker = await reply(http, conv["id"], "marker")
    await report(desk, conv, marker, "sent")

    async def applied() -> dict[str, str] | None:
        now = await states(http, conv["id"])
        return now if now.get(marker) == "sent" else None

    return dict(await wait_for(applied, timeout_s=15))


async def test_out_of_order_statuses_leave_a_reply_at_the_furthest_state_reported(
    desk: Desk, http: httpx.AsyncClient
) -> None:
    conv = await arrive(desk, inbound(desk.tenant, "status-order", "where is my parcel?"))
    # each report a batch of its own: delivered first, then the late sent and queued
    one = await reply(http, conv["id"], "it left the depot")
    await report(desk, conv, one, "delivered")
    await wait_for(lambda: _is(http, conv["id"], one, "delivered"))
    await report(desk, conv, one, "sent")
    await report(desk, conv, one, "queued")
    # all in one batch: delivered, then sent, then queued, ending on the lowest
    two = await reply(http, conv["id"], "it arrives today")
    await report(desk, conv, two, "delivered", "sent", "queued")
    # a lower state after a higher one, then the higher one again (a redelivered batch)
    three = await reply(http, conv["id"], "the driver is close")
    await report(desk, conv, three, "sent", "delivered", "sent", "delivered", "sent")
    # failed is final: a late success report does not undo it
    four = await reply(http, conv["id"], "could not reach you")
    await report(desk, conv, four, "failed", "delivered", "sent")

    final = await settled(desk, http, conv)

    assert final[one] == "delivered", final
    assert final[two] == "delivered", final
    assert final[three] == "delivered", final
    assert final[four] == "failed", final


async def _is(http: httpx.AsyncClient, conversation_id: str, message_id: str, state: str) -> bool:
    return (await states(http, conversation_id)).get(message_id) == state
