"""The tenant rows every routing transaction reads and writes: their locks, routing versions and the engine's
counters (part of the ``Routing`` port, ``SqlRouting``). On PostgreSQL each is one fixed text, run by the driver
itself (``raw.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.adapters.db import raw
from services.router.adapters.db import tables as t
from services.router.adapters.db.statements import rows_in

_LOCK_ALL = "SELECT pg_advisory_xact_lock(hashtext(k)) FROM unnest(CAST(:keys AS TEXT[])) AS k"
_VERSIONS = "SELECT id, routing_version FROM tenants WHERE id = ANY(CAST(:ids AS VARCHAR[])) ORDER BY id FOR UPDATE"
_BUMP_ALL = (
    "UPDATE tenants AS t SET routing_version = t.routing_version + 1, routing_state = CAST(v.state AS JSON) "
    "FROM unnest(CAST(:ids AS VARCHAR[]), CAST(:states AS TEXT[])) AS v(id, state) WHERE t.id = v.id"
)


class TenantRows:
    """``SqlRouting``'s statements on the ``tenants`` rows, on its connection and dialect."""

    conn: AsyncConnection
    dialect: str

    async def lock_tenants(self, tenant_ids: Iterable[str]) -> None:
        """Serialize identity resolution per tenant across router replicas (PostgreSQL advisory lock, held to
        the end of the transaction). Routing locks the tenant's agents anyway; this lock also makes merges
        and "new identity, verified claim" links race-free. SQLite has a single writer already."""
        if self.dialect != "postgresql":
            return
        keys = [f"switchboard:{tenant_id}" for tenant_id in sorted(set(tenant_ids))]
        if keys:  # one statement for all; taken in name order (unnest keeps the array's), so two never deadlock
            await raw.fetch(self.conn, _LOCK_ALL, {"keys": keys})

    async def routing_versions(self, tenant_ids: Iterable[str]) -> dict[str, int]:
        """Each tenant's routing version, their rows locked (in id order) until the transaction ends (PostgreSQL)."""
        tn = t.tenants.c
        wanted = sorted(set(tenant_ids))
        if not wanted:
            return {}
        if self.dialect == "postgresql":
            rows: Iterable[Any] = await raw.fetch(self.conn, _VERSIONS, {"ids": wanted})
        else:
            query = select(tn.id, tn.routing_version).order_by(tn.id).with_for_update()
            rows = await rows_in(self.conn, query, tn.id, wanted)
        found = {r[0]: int(r[1]) for r in rows}
        return {tenant_id: found.get(tenant_id, 0) for tenant_id in wanted}

    async def bump_routing_version(self, tenant_id: str, state: Mapping[str, Any] | None = None) -> None:
        tn = t.tenants.c
        values: dict[str, Any] = {"routing_version": tn.routing_version + 1}
        if state is not None:
            values["routing_state"] = dict(state)
        await self.conn.execute(update(t.tenants).where(tn.id == tenant_id).values(**values))

    async def store_routing_states(self, states: Mapping[str, Mapping[str, Any]]) -> None:
        if not states:
            return
        ordered = sorted(states.items())
        if self.dialect == "postgresql":
            ids = [tenant_id for tenant_id, _ in ordered]
            encoded = [orjson.dumps(dict(state)).decode() for _, state in ordered]
            await raw.fetch(self.conn, _BUMP_ALL, {"ids": ids, "states": encoded})
            return
        for tenant_id, state in ordered:  # in process: no round trip to save
            await self.bump_routing_version(tenant_id, state)

    async def routing_state(self, tenant_id: str) -> dict[str, Any]:
        tn = t.tenants.c
        row = (await self.conn.execute(select(tn.routing_state).where(tn.id == tenant_id))).first()
        return dict(row.routing_state or {}) if row else {}
