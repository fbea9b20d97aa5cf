"""The demo desk for `switchboard dev`: tenant `demo`, two queues and three agents, one of them online."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select

from services.router.adapters.db import tables as t
from services.router.domain.model import DEFAULT_CAPACITY, Presence
from shared.store import Database

DEMO_TENANT = "demo"
# Three units: three chats, or six emails, or a mix; a call alone (routing/capacity.py).
STANDARD_PROFILE = {"capacity": 3, "weights": {"default": 1, "email": 0.5}, "max": {}, "exclusive": ["voice"]}
MESSAGING = ["chat", "in_app", "messenger", "instagram", "whatsapp", "telegram", "sms"]

DEMO_QUEUES = [
    # (id, name, channels, is_default, routing)
    # Messaging offers each conversation to an agent, who accepts it in the console (60 s, then the next agent).
    ("q-messaging", "Messaging", MESSAGING, False, {"offer_timeout_s": 60}),
    ("q-email", "Email", ["email"], False, {}),
    ("q-general", "General", [], True, {}),
]
DEMO_AGENTS = [
    # (id, name, presence, queue ids)
    ("agent-ada", "Ada Lovelace", Presence.ONLINE, ["q-messaging", "q-email", "q-general"]),
    ("agent-grace", "Grace Hopper", Presence.AWAY, ["q-messaging", "q-general"]),
    ("agent-alan", "Alan Turing", Presence.OFFLINE, ["q-email", "q-general"]),
]


async def seed_demo(db: Database, now: datetime, tenant_id: str = DEMO_TENANT) -> bool:
    """Create the demo desk unless the tenant exists. Returns whether it created it."""
    async with db.transaction() as conn:
        if (await conn.execute(select(t.tenants.c.id).where(t.tenants.c.id == tenant_id))).first():
            return False
        await conn.execute(insert(t.tenants).values(id=tenant_id, name="Demo desk", created_at=now))
        await conn.execute(
            insert(t.queues),
            [
                dict(
                    id=f"{tenant_id}-{qid}",
                    tenant_id=tenant_id,
                    name=name,
                    channels=channels,
                    is_default=default,
                    routing=routing if tenant_id == DEMO_TENANT else {},  # test desks route directly
                    created_at=now,
                )
                for qid, name, channels, default, routing in DEMO_QUEUES
            ],
        )
        profile = None
        if tenant_id == DEMO_TENANT:  # the demo desk protects its agents; test desks count per channel
            profile = "standard"
            await conn.execute(
                insert(t.routing_profiles).values(
                    id=profile, tenant_id=tenant_id, name="Standard", config=STANDARD_PROFILE, created_at=now
                )
            )
        await conn.execute(
            insert(t.agents),
            [
                dict(
                    id=f"{tenant_id}-{aid}" if tenant_id != DEMO_TENANT else aid,
                    tenant_id=tenant_id,
                    name=name,
                    presence=presence.value,
                    capacity=DEFAULT_CAPACITY,
                    profile_id=profile,
                    queue_ids=[f"{tenant_id}-{q}" for q in qids],
                    created_at=now,
                )
                for aid, name, presence, qids in DEMO_AGENTS
            ],
        )
    return True
