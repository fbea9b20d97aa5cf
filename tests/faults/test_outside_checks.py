"""The outside checks can fail: rows planted in the assignments table (an overlapping holder, an agent over the
capacity of their routing profile, an assignment the agent's feed never showed) are each counted, while a
clean handover at the same instant is not."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from services.router.adapters.db import tables as t
from services.router.adapters.db.migrate import upgrade
from services.router.adapters.db.seed import seed_demo
from shared.store import Database
from tests.conftest import Servers, random_name
from tests.faults.outside_checks import check_assignments

PROFILE = {"capacity": 4, "weights": {"default": 1, "telegram": 0.5}, "max": {"telegram": 6}, "exclusive": ["voice"]}
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class Desk:
    def __init__(self, db: Database, tenant: str) -> None:
        self.db, self.tenant = db, tenant
        self.agent = f"{tenant}-agent-ada"

    async def conversation(self, channel: str) -> str:
        customer, conversation = str(uuid.uuid4()), str(uuid.uuid4())
        async with self.db.transaction() as conn:
            await conn.execute(insert(t.customers).values(id=customer, tenant_id=self.tenant, created_at=T0))
            await conn.execute(
                insert(t.conversations).values(
                    id=conversation, tenant_id=self.tenant, customer_id=customer, status="resolved",
                    channel=channel, opened_at=T0, last_message_at=T0,
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
