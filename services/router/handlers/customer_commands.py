"""Supervisors' and admins' commands on customers: merge, unmerge, erasure, retention."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import orjson

from services.router.adapters.db.erasure import DEFAULT_KEY, apply_retention, erase_customer
from services.router.adapters.db.merges import merge_customers, unmerge_customers
from services.router.adapters.db.unit_of_work import (
    SqlRepository,
    new_id,
)
from services.router.domain.errors import NotFound
from services.router.handlers.outbox import OutboxRelay
from services.router.handlers.ports import Clock
from shared.bus import Outgoing
from shared.topics import Topics

log = logging.getLogger(__name__)


class CustomerCommands:
    """Supervisors' merge and unmerge, recorded on the timeline and published as customer events."""

    def __init__(self, repo: SqlRepository, relay: OutboxRelay, clock: Clock, topics: Topics) -> None:
        self.repo = repo
        self.relay = relay
        self.clock = clock
        self.topics = topics
        self.erasure_key = DEFAULT_KEY  # the composition root sets SWITCHBOARD_ERASURE_KEY

    async def merge(self, tenant_id: str, survivor: str, merged: str, actor: str) -> str:
        now = self.clock()
        async with self.repo.unit() as u:
            await u.lock_tenants([tenant_id])
            merge_id = await merge_customers(u.conn, tenant_id, survivor, merged, reason="manual", actor=actor, now=now)
            await u.bump_routing_version(tenant_id)  # a fold may have ended assignments: routing state rebuilds
            # No routing pass here: merge and unmerge stay exact inverses. Capacity a fold freed is used by the
            # next routing pass (the next message, resolve or presence change of the tenant).
            await u.add_outbox([self._event("customer.merged", tenant_id, merge_id, survivor, merged, actor, now)], now)
        await self.relay.flush()
        return merge_id

    async def unmerge(self, tenant_id: str, survivor: str, merged: str, actor: str) -> str:
        now = self.clock()
        async with self.repo.unit() as u:
            await u.lock_tenants([tenant_id])
            merge_id = await unmerge_customers(u.conn, tenant_id, survivor, merged, actor=actor, now=now)
            await u.bump_routing_version(tenant_id)
            await u.add_outbox(
                [self._event("customer.unmerged", tenant_id, merge_id, survivor, merged, actor, now)], now
            )
        await self.relay.flush()
        return merge_id

    async def erase(self, tenant_id: str, customer_id: str, actor: str) -> dict[str, Any]:
        """GDPR erasure (see adapters/erasure.py), announced as ``customer.erased`` (ids only) on the customer
        events topic for every other consumer to honour."""
        now = self.clock()
        await self.relay.flush()  # what is already decided goes out before the data behind it is blanked
        async with self.repo.unit() as u:
            await u.lock_tenants([tenant_id])
            done = await erase_customer(u.conn, tenant_id, customer_id, self.erasure_key, now)
            if done is None:
                raise NotFound(f"no customer {customer_id}")
            await u.bump_routing_version(tenant_id)
            body = {
                "type": "customer.erased",
                "id": new_id(),
                "tenant": tenant_id,
                "customer_ids": done["customers"],
                "attachments": done["attachments"],  # blob references, for the connectors that store them
                "actor": actor,
                "time": now,
            }
            key = f"{tenant_id}\x1f{customer_id}".encode()
            await u.add_outbox([Outgoing(self.topics.customers, orjson.dumps(body), key=key)], now)
        await self.relay.flush()
        log.info("customer.erased", extra={"tenant": tenant_id, "customer": customer_id})
        return done

    async def apply_retention(self, cutoff: datetime, batches: int = 20) -> int:
        """Blank conversations closed before ``cutoff``, a batch at a time: at most ``batches`` per call, so a
        large backlog is worked off over several sweeps without holding up the routing timers."""
        total = 0
        for _ in range(batches):
            async with self.repo.unit() as u:
                done = await apply_retention(u.conn, cutoff, self.clock())
            total += done
            if done == 0:
                break
        if total:
            log.info("retention.applied", extra={"conversations": total})
        return total

    def _event(
        self, kind: str, tenant_id: str, merge_id: str, survivor: str, merged: str, actor: str, now: datetime
    ) -> Outgoing:
        body = {
            "type": kind,
            "id": new_id(),
            "tenant": tenant_id,
            "merge_id": merge_id,
            "survivor_id": survivor,
            "merged_id": merged,
            "actor": actor,
            "time": now,
        }
        return Outgoing(self.topics.customers, orjson.dumps(body), key=f"{tenant_id}\x1f{survivor}".encode())
