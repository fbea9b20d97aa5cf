"""Merge then unmerge restores exactly what was there, over random histories (hypothesis).

Histories are made through the real context stage (messages on several channels and identities, resolves,
reopens), on the embedded store; the snapshot covers every table a merge touches."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from services.router.adapters.db import tables as t
from services.router.adapters.db.migrate import upgrade
from services.router.adapters.db.seed import seed_demo
from services.router.bootstrap import build_router
from shared.bus import Record
from shared.bus_memory import MemoryBus
from shared.events import encode_event
from shared.routing_commands import Command, Resolve
from shared.store import Database
from tests.conftest import random_name
from tests.support.runtime import inbound, settings_for

DB_DIR = Path(tempfile.mkdtemp(prefix="merge-roundtrip-"))


def _migrate_once() -> None:
    async def run() -> None:
        db = Database(f"sqlite+aiosqlite:///{DB_DIR}/switchboard.db")
        await upgrade(db)
        await db.close()

    asyncio.run(run())


_migrate_once()

# an operation: ("msg", customer index, identity index) or ("resolve", customer index)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("msg"), st.integers(0, 2), st.integers(0, 1)),
        st.tuples(st.just("resolve"), st.integers(0, 2), st.just(0)),
    ),
    min_size=1,
    max_size=12,
)


async def snapshot(db: Database, tenant: str) -> dict[str, Any]:
    async with db.read() as conn:

        async def rows(table: Any, *cols: str, where: Any = None) -> list[tuple[Any, ...]]:
            stmt = select(*(table.c[c] for c in cols)).where(table.c.tenant_id == tenant)
            if where is not None:
                stmt = stmt.where(where)
            return sorted(tuple(r) for r in await conn.execute(stmt))

        return {
            "customers": await rows(t.customers, "id", "merged_into", "name", "email", "phone", "tier"),
            "identities": await rows(t.identities, "id", "customer_id", "kind", "value"),
            "conversations": await rows(t.conversations, "id", "customer_id", "status", "merged_into", "agent_id"),
            "messages": await rows(t.messages, "id", "customer_id", "conversation_id"),
            "assignments": await rows(t.assignments, "id", "conversation_id", "agent_id", "ended_at"),
            "timeline": await rows(
                t.timeline,
                "seq",
                "customer_id",
                "conversation_id",
                "kind",
                where=t.timeline.c.kind.not_in(["customer_merged", "customer_unmerged"]),
            ),
        }


async def run_history(history: list[tuple[str, int, int]], pair: tuple[int, int]) -> None:
    settings = settings_for("embedded", DB_DIR, auto_migrate=False)
    router = build_router(settings, bus=MemoryBus())
    tenant = random_name("tn")
    await seed_demo(router.db, datetime.now(UTC), tenant_id=tenant)
    offset = 0
    try:
        for op, who, which in history:
            if op == "msg":
                event = inbound(tenant, f"c{who}-id{which}", f"{op}{who}{which}")
                offset += 1
                await router.stage.handle([Record("events", 0, offset, None, encode_event(event))])
            else:
                async with router.repo.reader() as conn:
                    c = t.conversations.c
                    ids = [
                        r.id
                        for r in await conn.execute(
                            select(c.id)
                            .join(t.identities, t.identities.c.customer_id == c.customer_id)
                            .where(c.tenant_id == tenant, c.status == "open", t.identities.c.value.like(f"c{who}-%"))
                        )
                    ]
                for conv_id in ids[:1]:
                    await router.executor.apply(
                        Command.of(tenant, Resolve(conversation_id=conv_id))
                    )  # the stage is driven by hand, so is its owner
        async with router.repo.reader() as conn:
            i = t.identities.c
            owners = {
                r.value: r.customer_id
                for r in await conn.execute(select(i.value, i.customer_id).where(i.tenant_id == tenant))
            }
        customers = sorted({v for k, v in owners.items()})
        if len(customers) < 2:
            return
        survivor, merged = customers[pair[0] % len(customers)], customers[pair[1] % len(customers)]
        if survivor == merged:
            merged = next(c for c in customers if c != survivor)
        before = await snapshot(router.db, tenant)
        await router.customers.merge(tenant, survivor, merged, "test")
        during = await snapshot(router.db, tenant)
        assert during != before
        assert not [r for r in during["identities"] if r[1] == merged], "every identity moved"
        assert not [r for r in during["messages"] if r[1] == merged], "every message moved"
        open_convs = [r for r in during["conversations"] if r[1] == survivor and r[2] == "open"]
        assert len(open_convs) <= 1, "one open conversation per customer after a merge"
        await router.customers.unmerge(tenant, survivor, merged, "test")
        after = await snapshot(router.db, tenant)
        assert after == before
    finally:
        await router.db.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops, st.tuples(st.integers(0, 5), st.integers(0, 5)))
def test_merge_then_unmerge_round_trips_exactly(history: list[tuple[str, int, int]], pair: tuple[int, int]) -> None:
    asyncio.run(run_history(history, pair))
