"""The shape every timer of the router shares (SLA clocks, follow-ups): read which tenants have something due,
then handle each tenant in a transaction of its own under its lock, and flush the outbox once at the end."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from services.router.handlers.outbox import OutboxRelay
from services.router.handlers.ports import Store, UnitOfWork


async def sweep_due(
    store: Store,
    relay: OutboxRelay,
    now: datetime,
    tenants_due: Callable[[UnitOfWork, datetime], Awaitable[list[str]]],
    handle_tenant: Callable[[str, datetime], Awaitable[int]],
) -> int:
    """How many things the tenants' handling did (fired, sent)."""
    async with store.reading(snapshot=False) as u:
        tenants = await tenants_due(u, now)
    done = 0
    for tenant_id in tenants:
        done += await handle_tenant(tenant_id, now)
    if done:
        await relay.flush()
    return done
