"""The outside checks can fail: rows planted in the assignments table (an overlapping holder, an agent over the
capacity of their routing profile, an assignment the agent's feed never showed) are each counted, while a
clean handover at the same instant is not; and so are messages of any channel dropped, stored twice or on
another channel, and replies lost, delivered twice or through another channel's provider."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, update

from services.router.adapters.db import tables as t
from services.router.adapters.db.migrate import upgrade
from services.router.adapters.db.seed import seed_demo
from shared.store import Database
from tests.conftest import Servers, random_name
from tests.faults.channels import WHATSAPP_PHONE_NUMBER_ID
from tests.faults.outside_checks import Delivery, Restart, check, check_assignments, delivered_replies
from tests.faults.traffic import Tally
from tests.support.providers import Seen

PROFILE = {"capacity": 4, "weights": {"default": 1, "telegram": 0.5}, "max": {"telegram": 6}, "exclusive": ["voice"]}
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class Desk:
    def __init__(self, db: Database, tenant: str) -> None:
        self.db, self.tenant = db, tenant
        self.agent = f"{tenant}-agent-ada"
        self.customer_of: dict[str, str] = {}

    async def conversation(self, channel: str) -> str:
        customer, conversation = str(uuid.uuid4()), str(uuid.uuid4())
        self.customer_of[conversation] = customer
        async with self.db.transaction() as conn:
            await conn.execute(insert(t.customers).values(id=customer, tenant_id=self.tenant, created_at=T0))
            await conn.execute(
                insert(t.conversations).values(
                    id=conversation, tenant_id=self.tenant, customer_id=customer, status="resolved",
                    channel=channel, opened_at=T0, last_message_at=T0,
                )
            )  # fmt: skip
        return conversation

    async def message(self, channel: str, direction: str, text: str, conversation: str = "") -> str:
        """A row of ``messages`` (as the router stores it) in a conversation of its own unless one is given."""
        conversation = conversation or await self.conversation(channel)
        async with self.db.transaction() as conn:
            await conn.execute(
                insert(t.messages).values(
                    id=str(uuid.uuid4()), tenant_id=self.tenant, event_id=str(uuid.uuid4()),
                    conversation_id=conversation, customer_id=self.customer_of[conversation], channel=channel,
                    direction=direction, sender_kind="agent" if direction == "outbound" else "phone", text=text,
                    received_at=T0, created_at=T0,
                )
            )  # fmt: skip
        return conversation

    async def hold(self, conversation: str, channel: str, start_s: float, end_s: float | None, agent: str = "") -> None:
        """An assignment row from T0 + start_s to T0 + end_s, and (as the router writes it) its feed event."""
        agent = agent or self.agent
        async with self.db.transaction() as conn:
            await conn.execute(
                insert(t.assignments).values(
                    id=str(uuid.uuid4()), tenant_id=self.tenant, conversation_id=conversation, agent_id=agent,
                    queue_id=f"{self.tenant}-q-messaging", channel=channel, assigned_at=T0 + timedelta(seconds=start_s),
                    accepted_at=T0 + timedelta(seconds=start_s),
                    ended_at=None if end_s is None else T0 + timedelta(seconds=end_s),
                )
            )  # fmt: skip
            await conn.execute(
                insert(t.agent_events).values(
                    id=str(uuid.uuid4()), tenant_id=self.tenant, agent_id=agent, type="assignment",
                    conversation_id=conversation, data={}, at=T0,
                )
            )  # fmt: skip


async def test_outside_checks_count_planted_overlaps_capacity_and_feed_gaps(servers: Servers) -> None:
    db = Database(servers.database_url)
    try:
        await upgrade(db)
        tenant = random_name("fc")
        await seed_demo(db, T0, tenant_id=tenant)
        async with db.transaction() as conn:
            profile = f"{tenant}-p"
            await conn.execute(
                insert(t.routing_profiles).values(id=profile, tenant_id=tenant, name="p", config=PROFILE, created_at=T0)
            )
            await conn.execute(t.agents.update().where(t.agents.c.tenant_id == tenant).values(profile_id=profile))
        desk = Desk(db, tenant)
        grace = f"{tenant}-agent-grace"

        # Clean: a handover at the same instant, four chats at once (4 units), six Telegram chats and a chat.
        handed = await desk.conversation("in_app")
        await desk.hold(handed, "in_app", 0, 10)
        await desk.hold(handed, "in_app", 10, 20, agent=grace)
        for _ in range(3):
            await desk.hold(await desk.conversation("in_app"), "in_app", 1, 5)
        for _ in range(6):
            await desk.hold(await desk.conversation("telegram"), "telegram", 30, 40)
        await desk.hold(await desk.conversation("in_app"), "in_app", 31, 40)
        clean = await check_assignments(db, tenant)
        assert (clean["double_assigned"], clean["capacity_violations"], clean["feeds_disagree"]) == (0, 0, 0), clean
        assert clean["peak_units"] == 4.0

        # Planted: ada holds ``handed`` again while grace still does; a fifth unit for ada; a seventh Telegram
        # chat; an assignment row the feed never showed.
        await desk.hold(handed, "in_app", 15, 25)
        await desk.hold(await desk.conversation("in_app"), "in_app", 2, 3)
        await desk.hold(await desk.conversation("telegram"), "telegram", 35, 36)
        async with db.transaction() as conn:
            await conn.execute(
                insert(t.assignments).values(
                    id=str(uuid.uuid4()), tenant_id=tenant, conversation_id=await desk.conversation("in_app"),
                    agent_id=grace, queue_id=f"{tenant}-q-messaging", channel="in_app",
                    assigned_at=T0 + timedelta(seconds=50), ended_at=T0 + timedelta(seconds=51),
                )
            )  # fmt: skip
        planted = await check_assignments(db, tenant)
        assert planted["double_assigned"] == 1, planted
        assert planted["capacity_violations"] == 2, planted  # 5 units at +2 s; 7 on Telegram (4.5 units) at +35 s
        assert planted["feeds_disagree"] == 1, planted
    finally:
        await db.close()


# One message of each way in, two by SMS; a reply on every channel a connector delivers to.
SENT = {
    "m0000000": "in_app",
    "m0000001": "telegram",
    "m0000002": "whatsapp",
    "m0000004": "messenger",
    "m0000005": "sms",
    "m0000011": "sms",
}
REPLIES = {"r0000001": "telegram", "r0000002": "whatsapp", "r0000003": "messenger", "r0000004": "sms"}


def provider_requests(sends: list[tuple[str, str]]) -> list[Seen]:
    """What the fake providers record for each (channel, text) sent through their APIs."""
    api = {
        "telegram": lambda text: Seen("POST", "/bot1:X/sendMessage", {}, json={"chat_id": 1, "text": text}),
        "whatsapp": lambda text: Seen(
            "POST", f"/v21.0/{WHATSAPP_PHONE_NUMBER_ID}/messages", {},
            json={"messaging_product": "whatsapp", "to": "1", "type": "text", "text": {"body": text}},
        ),
        "messenger": lambda text: Seen(
            "POST", "/v21.0/me/messages", {}, json={"recipient": {"id": "P"}, "message": {"text": text}}
        ),
        "sms": lambda text: Seen("POST", "/2010-04-01/Accounts/AC1/Messages.json", {}, form={"Body": text}),
    }  # fmt: skip
    return [api[channel](text) for channel, text in sends]


async def test_outside_checks_count_each_channels_messages_dropped_doubled_or_misplaced_and_replies_too(
    servers: Servers,
) -> None:
    db = Database(servers.database_url)
    try:
        await upgrade(db)
        tenant = random_name("fc")
        await seed_demo(db, T0, tenant_id=tenant)
        desk = Desk(db, tenant)
        tally = Tally(sent=len(SENT))
        tally.channel_of.update(SENT | REPLIES)
        tally.accepted |= set(SENT)
        tally.replies_accepted |= set(REPLIES)
        rows = {token: await desk.message(channel, "inbound", f"{token} hello") for token, channel in SENT.items()}
        for token, channel in REPLIES.items():
            await desk.message(channel, "outbound", f"{token} on it")
        sends = [(channel, f"{token} on it") for token, channel in REPLIES.items()]
        delivered = delivered_replies(provider_requests(sends))
        assert [(d.channel, d.text) for d in delivered] == sends

        clean = await check(db, tenant, tally, delivered)
        counts = ["lost", "duplicated", "stored_on_wrong_channel"]
        counts += ["replies_lost", "replies_delivered_twice", "replies_on_wrong_channel"]
        assert [clean[name] for name in counts] == [0] * 6, clean
        assert clean["channels"]["sms"] == {
            "sent": 2, "accepted": 2, "stored": 2, "lost": 0, "duplicated": 0, "replayed": 0, "replies": 1,
            "replies_delivered": 1, "replies_repeated_after_kill": 0,
        }  # fmt: skip

        # Planted: the Messenger message dropped, the WhatsApp one stored twice, an SMS stored as WhatsApp; the
        # WhatsApp reply never sent, the SMS one sent twice, the Messenger one sent by SMS. Both connectors
        # were killed and started again at 15 s: the Telegram reply, the last one it had delivered, went out
        # again (a repeat of the reply in hand, counted apart); the SMS one was not the last of its channel.
        async with db.transaction() as conn:
            m = t.messages.c
            await conn.execute(delete(t.messages).where(m.conversation_id == rows["m0000004"]))
            await conn.execute(
                update(t.messages).where(m.conversation_id == rows["m0000011"]).values(channel="whatsapp")
            )
        await desk.message("whatsapp", "inbound", "m0000002 hello", rows["m0000002"])
        delivered = [
            Delivery("telegram", "r0000001 on it", 10.0),
            Delivery("sms", "r0000004 on it", 11.0),
            Delivery("sms", "r0000003 on it", 12.0),
            Delivery("sms", "r0000004 on it", 20.0),
            Delivery("telegram", "r0000001 on it", 21.0),
        ]
        restarts = [Restart(("telegram",), 15.0), Restart(("sms",), 15.0)]
        planted = await check(db, tenant, tally, delivered, restarts)
        assert [planted[name] for name in counts] == [1] * 6, planted
        assert planted["samples"]["lost"]["messenger"] == ["m0000004"], planted["samples"]
        assert planted["channels"]["messenger"]["lost"] == 1 and planted["channels"]["whatsapp"]["duplicated"] == 1
        assert planted["samples"]["stored_on_wrong_channel"] == ["m0000011 whatsapp"]
        assert planted["samples"]["replies_on_wrong_channel"] == ["r0000003 sms"]
        assert [s["token"] for s in planted["samples"]["replies_delivered_twice"]] == ["r0000004"]
        assert (
            planted["replies_repeated_after_kill"]
            == planted["channels"]["telegram"]["replies_repeated_after_kill"]
            == 1
        )
        assert [s["token"] for s in planted["samples"]["replies_repeated_after_kill"]] == ["r0000001"]
    finally:
        await db.close()
