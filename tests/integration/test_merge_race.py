"""A supervisor merges two customers while one of them is writing: two routers of one group on real Kafka and
PostgreSQL, the tenant's routing owner storing that customer's messages from Kafka in its transactions while
the API call (served by one of the routers, not necessarily the owner) commits the merge in a transaction of
its own, started once some of the customer's messages are stored and most are still on their way. Whatever
interleaving happens, every message is stored once and belongs, with its conversation, to the customer that
survived the merge: none stays with the folded customer, none is lost, none is stored twice."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import select

from services.router.adapters.db import tables as t
from services.router.adapters.db.api_keys import generate_key, store_key
from services.router.adapters.db.seed import seed_demo
from services.router.bootstrap import RouterRuntime, build_router
from shared.bus import Outgoing
from shared.events import Channel, ConversationEvent, IdentityKind, encode_event
from tests.conftest import Servers, random_name
from tests.support.runtime import inbound, serving, settings_for, texted

PAIRS = 6  # survivor and folded customer, each pair merged once while the folded one writes
WRITES = 16  # messages each folded customer sends around the merge; survivors send half as many


def by_email(tenant: str, email: str, text: str) -> ConversationEvent:
    return inbound(tenant, email, text, channel=Channel.EMAIL, kind=IdentityKind.EMAIL, verified=True)


async def stored(router: RouterRuntime, tenant: str, event_ids: list[str]) -> list[tuple[str, str, str]]:
    """(event id, customer, conversation's customer) of each stored message of these events."""
    m, cv = t.messages.c, t.conversations.c
    async with router.db.read() as conn:
        rows = await conn.execute(
            select(m.event_id, m.customer_id, cv.customer_id.label("owner"))
            .join(t.conversations, cv.id == m.conversation_id)
            .where(m.tenant_id == tenant, m.direction == "inbound", m.event_id.in_(event_ids))
        )
        return [(r.event_id, r.customer_id, r.owner) for r in rows]


async def until_stored(router: RouterRuntime, tenant: str, event_ids: list[str]) -> list[tuple[str, str, str]]:
    async with asyncio.timeout(30):
        while True:
            rows = await stored(router, tenant, event_ids)
            if len({r[0] for r in rows}) >= len(set(event_ids)):
                return rows
            await asyncio.sleep(0.1)


async def test_messages_racing_a_merge_all_end_with_the_survivor_once(servers: Servers, tmp_path: Path) -> None:
    # small batches: many ingest transactions, so the merges fall between and among them
    settings = settings_for("production", tmp_path, servers, consumer_batch_max=3)
    routers = [build_router(settings) for _ in range(2)]
    for r in routers:
        await r.start()
    tenant = random_name("tn")
    now = datetime.now(UTC)
    await seed_demo(routers[0].db, now, tenant_id=tenant)
    key = generate_key()
    await store_key(routers[0].db, tenant, key, "supervisor", "merger", now)
    topic = routers[0].topics.events
    try:
        phones = [f"+1415556{i:04d}" for i in range(PAIRS)]
        emails = [f"race-{random_name('')}@example.com" for _ in range(PAIRS)]
        first = [texted(tenant, phones[i], f"pair {i} survivor hello") for i in range(PAIRS)]
        first += [by_email(tenant, emails[i], f"pair {i} folded hello") for i in range(PAIRS)]
        await routers[0].bus.publish([Outgoing(topic, encode_event(e), e.partition_key()) for e in first])
        rows = {r[0]: r[1] for r in await until_stored(routers[0], tenant, [e.id for e in first])}
        survivor = [rows[first[i].id] for i in range(PAIRS)]
        folded = [rows[first[PAIRS + i].id] for i in range(PAIRS)]
        assert len(set(survivor + folded)) == 2 * PAIRS, "two customers a pair before the merge"

        # the writes: each folded customer's and survivor's messages, interleaved, a few at a time
        writes = [by_email(tenant, emails[i], f"pair {i} folded {n}") for i in range(PAIRS) for n in range(WRITES)]
        writes += [
            texted(tenant, phones[i], f"pair {i} survivor {n}") for i in range(PAIRS) for n in range(WRITES // 2)
        ]
        random.Random(11).shuffle(writes)
        pair_of = {e.id: int(e.content.text.split()[1]) for e in [*first, *writes]}  # type: ignore[union-attr]

        async def write() -> None:
            for k in range(0, len(writes), 4):
                chunk = writes[k : k + 4]
                await routers[k % 2].bus.publish([Outgoing(topic, encode_event(e), e.partition_key()) for e in chunk])
                await asyncio.sleep(0.01)

        amid: list[float] = []  # the share of each pair's writes stored when its merge had committed
        async with (
            serving(routers[1]) as base,
            httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http,
        ):

            async def share_stored(i: int) -> float:
                mine = [e.id for e in writes if pair_of[e.id] == i]
                return len({row[0] for row in await stored(routers[0], tenant, mine)}) / len(mine)

            async def merge(i: int) -> None:
                # once the owner is storing this pair's writes: the merge falls among its transactions
                async with asyncio.timeout(20):
                    while await share_stored(i) < 0.25:
                        await asyncio.sleep(0.01)
                r = await http.post(f"/v1/customers/{survivor[i]}/merge", json={"customer_id": folded[i]})
                assert r.status_code == 200, r.text
                amid.append(await share_stored(i))

            await asyncio.gather(write(), *(merge(i) for i in range(PAIRS)))
        assert len(amid) == PAIRS
        assert any(share < 1 for share in amid), f"some writes must come after the merges to race them: {amid}"

        every = [e.id for e in [*first, *writes]]
        await until_stored(routers[0], tenant, every)
        await asyncio.sleep(0.5)  # a redelivered batch, if any, would land by now
        rows_after = await stored(routers[0], tenant, every)

        times = Counter(event_id for event_id, _, _ in rows_after)
        assert [e for e in every if times[e] != 1] == [], "every message stored exactly once"
        misplaced = [
            (pair_of[event_id], customer, owner)
            for event_id, customer, owner in rows_after
            if customer != survivor[pair_of[event_id]] or owner != survivor[pair_of[event_id]]
        ]
        assert misplaced == [], "messages (or their conversations) left with the folded customer"
        c = t.customers.c
        async with routers[0].db.read() as conn:
            merged_into = dict(
                (r.id, r.merged_into) for r in await conn.execute(select(c.id, c.merged_into).where(c.id.in_(folded)))
            )
        assert merged_into == {folded[i]: survivor[i] for i in range(PAIRS)}
    finally:
        for r in routers:
            await r.stop()
