"""1,000 messages from 100 customers on 4 channels, delivered concurrently through real Kafka to two router
consumers on real PostgreSQL: exactly 100 customers, each with one open conversation holding exactly their
messages."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from services.router.adapters.db import tables as t
from services.router.adapters.db.seed import seed_demo
from services.router.bootstrap import build_router
from shared.bus import Outgoing
from shared.events import Channel, Claim, ConversationEvent, IdentityKind, encode_event
from tests.conftest import Servers, random_name
from tests.support.runtime import inbound, settings_for

CUSTOMERS = 100
PER_CUSTOMER = 10


def messages_of(tenant: str, i: int) -> list[ConversationEvent]:
    """Customer i writes on WhatsApp and SMS (same phone), by email, and in the app, whose user is verified
    with that email and phone: four channels, three kinds of identity, one person."""
    phone, email, app_user = f"+1415555{i:04d}", f"c{i}@example.com", f"app-{i}"
    proofs = (
        Claim(kind=IdentityKind.PHONE, value=phone, verified=True),
        Claim(kind=IdentityKind.EMAIL, value=email, verified=True),
    )
    out = []
    for n in range(PER_CUSTOMER):
        text = f"customer {i} message {n}"
        match n % 4:
            case 0:
                out.append(
                    inbound(tenant, phone, text, channel=Channel.WHATSAPP, kind=IdentityKind.PHONE, verified=True)
                )
            case 1:
                out.append(inbound(tenant, phone, text, channel=Channel.SMS, kind=IdentityKind.PHONE, verified=True))
            case 2:
                out.append(inbound(tenant, email.upper(), text, channel=Channel.EMAIL, kind=IdentityKind.EMAIL))
            case _:
                out.append(inbound(tenant, app_user, text, channel=Channel.IN_APP, verified=True, claims=proofs))
    return out


async def test_concurrent_channels_of_100_customers_make_exactly_100_customers(
    servers: Servers, tmp_path: Path
) -> None:
    settings = settings_for("production", tmp_path, servers, consumer_batch_max=50)
    routers = [build_router(settings) for _ in range(2)]
    for r in routers:
        await r.start()
    tenant = random_name("tn")
    db = routers[0].db
    await seed_demo(db, datetime.now(UTC), tenant_id=tenant)
    try:
        events = [e for i in range(CUSTOMERS) for e in messages_of(tenant, i)]
        random.Random(7).shuffle(events)
        topic = routers[0].topics.events
        chunks = [events[k : k + 25] for k in range(0, len(events), 25)]
        await asyncio.gather(
            *(
                routers[k % 2].bus.publish([Outgoing(topic, encode_event(e), e.partition_key()) for e in chunk])
                for k, chunk in enumerate(chunks)
            )
        )
        m = t.messages.c
        async with asyncio.timeout(120):
            while True:
                async with db.read() as conn:
                    n = (
                        await conn.execute(select(func.count()).where(m.tenant_id == tenant, m.direction == "inbound"))
                    ).scalar_one()
                if n >= len(events):
                    break
                await asyncio.sleep(0.2)

        async with db.read() as conn:
            c, cv = t.customers.c, t.conversations.c
            live = [
                r.id for r in await conn.execute(select(c.id).where(c.tenant_id == tenant, c.merged_into.is_(None)))
            ]
            open_convs = {
                r.customer_id: r.id
                for r in await conn.execute(
                    select(cv.customer_id, cv.id).where(cv.tenant_id == tenant, cv.status == "open")
                )
            }
            n_open = (
                await conn.execute(select(func.count()).where(cv.tenant_id == tenant, cv.status == "open"))
            ).scalar_one()
            rows = (
                await conn.execute(
                    select(m.text, m.customer_id, m.conversation_id).where(
                        m.tenant_id == tenant, m.direction == "inbound"
                    )
                )
            ).all()
        assert len(live) == CUSTOMERS
        assert n_open == CUSTOMERS and set(open_convs) == set(live)
        by_customer: dict[str, set[str]] = defaultdict(set)
        for text, customer_id, conversation_id in rows:
            assert conversation_id == open_convs[customer_id], "every message sits in its customer's open conversation"
            by_customer[customer_id].add(text)
        assert sorted(len(v) for v in by_customer.values()) == [PER_CUSTOMER] * CUSTOMERS
        for texts in by_customer.values():
            assert len({x.split(" message ")[0] for x in texts}) == 1, "no customer holds another's messages"
    finally:
        for r in routers:
            await r.stop()
