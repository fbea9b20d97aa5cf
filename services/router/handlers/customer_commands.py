"""Supervisors' and admins' commands on customers: merge, unmerge, erasure, retention."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.router.domain.errors import InvalidCommand, NotFound
from services.router.domain.routing.facts import with_customer
from services.router.handlers.outbox import OutboxWriter
from services.router.handlers.ports.records import Lifecycle
from shared.bus import Outgoing
from shared.customer_events import MERGE_EVENTS, CustomerErased, CustomerMerged, CustomerUnmerged, encode
from shared.ids import new_id
from shared.routing_commands import Command, Tick
from shared.topics import Topics

log = logging.getLogger(__name__)


@dataclass(eq=False)
class CustomerCommands(OutboxWriter):
    """Supervisors' merge and unmerge, recorded on the timeline and published as customer events."""

    topics: Topics
    erasure_key: bytes  # SWITCHBOARD_ERASURE_KEY

    async def merge(self, tenant_id: str, survivor: str, merged: str, actor: str) -> str:
        now = self.clock()
        async with self.repo.unit() as u:
            await u.routing.lock_tenants([tenant_id])
            merge_id = await u.customers.merge(tenant_id, survivor, merged, reason="manual", actor=actor, now=now)
            await u.routing.bump_routing_version(tenant_id)  # a fold may have ended assignments: routing state rebuilds
            # No routing pass here: merge and unmerge stay exact inverses. Capacity a fold freed is used by the
            # next routing pass (the next message, resolve or presence change of the tenant).
            await u.outbox.add([self._event("customer.merged", tenant_id, merge_id, survivor, merged, actor, now)], now)
        await self.relay.flush()
        return merge_id

    async def unmerge(self, tenant_id: str, survivor: str, merged: str, actor: str) -> str:
        now = self.clock()
        async with self.repo.unit() as u:
            await u.routing.lock_tenants([tenant_id])
            merge_id = await u.customers.unmerge(tenant_id, survivor, merged, actor=actor, now=now)
            await u.routing.bump_routing_version(tenant_id)
            await u.outbox.add(
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
            await u.routing.lock_tenants([tenant_id])
            done = await u.customers.erase(tenant_id, customer_id, self.erasure_key, now)
            if done is None:
                raise NotFound(f"no customer {customer_id}")
            await u.routing.bump_routing_version(tenant_id)
            erased = self._published(
                CustomerErased,
                tenant_id,
                customer_id,
                actor,
                now,
                customer_ids=done["customers"],
                attachments=done["attachments"],  # blob references, for the connectors that store them
            )
            await u.outbox.add([erased], now)
        await self.relay.flush()
        log.info("customer.erased", extra={"tenant": tenant_id, "customer": customer_id})
        return done

    async def update_profile(self, tenant_id: str, customer_id: str, values: dict[str, Any], actor: str) -> None:
        """A staff edit of the profile (fields given are replaced), on the customer's timeline. Routing reads
        tier, language, tags and attributes (queue rules, priority): a change to one of them invalidates the
        tenant's routing state."""
        now = self.clock()
        routed = [k for k in ("tier", "language", "tags", "attributes", "owner_agent_id") if k in values]
        async with self.repo.unit() as u:
            await u.routing.lock_tenants([tenant_id])
            owner = values.get("owner_agent_id")
            if owner is not None and not await u.routing.agent_exists(tenant_id, owner):
                raise InvalidCommand(f"no agent {owner} to own this customer")
            customer = [(tenant_id, customer_id)]
            before = (await u.customers.customer_attrs(customer)).get(customer_id, {}) if routed else {}
            stored = {**values, "language_confidence": None} if "language" in values else values  # set, not guessed
            if not await u.customers.update_profile(tenant_id, customer_id, stored, now):
                raise NotFound(f"no customer {customer_id}")
            data = {"fields": sorted(values), "by": actor}
            await u.conversations.add_lifecycle([Lifecycle(tenant_id, customer_id, None, "profile_updated", now, data)])
            if any(values[k] != before.get(k) for k in routed):
                # waiting work takes the new priority, language and owner (it stays in its queue), and is routed
                # again at once by the tenant's owner
                after = (await u.customers.customer_attrs(customer))[customer_id]
                facts = await u.routing.customer_facts(tenant_id, customer_id)
                await u.routing.store_facts(
                    {(tenant_id, cid): with_customer(fact, after) for cid, fact in facts.items()}
                )
                await u.routing.bump_routing_version(tenant_id)
                await u.outbox.add([Command.of(tenant_id, Tick()).record(self.topics)], now)
        await self.relay.flush()

    async def open_conversations(self, tenant_id: str, customer_id: str) -> list[str]:
        """What erasure resolves first: the open conversations of the customer and of those merged into them."""
        async with self.repo.reading() as u:
            return await u.customers.open_conversations(tenant_id, customer_id)

    async def apply_retention(self, cutoff: datetime, batches: int = 20) -> int:
        """Blank conversations closed before ``cutoff``, a batch at a time: at most ``batches`` per call, so a
        large backlog is worked off over several sweeps without holding up the routing timers."""
        total = 0
        for _ in range(batches):
            async with self.repo.unit() as u:
                done = await u.customers.apply_retention(cutoff, self.clock())
            total += done
            if done == 0:
                break
        if total:
            log.info("retention.applied", extra={"conversations": total})
        return total

    def _event(
        self, kind: str, tenant_id: str, merge_id: str, survivor: str, merged: str, actor: str, now: datetime
    ) -> Outgoing:
        merge = {"merge_id": merge_id, "survivor_id": survivor, "merged_id": merged}
        return self._published(MERGE_EVENTS[kind], tenant_id, survivor, actor, now, **merge)

    def _published(
        self,
        kind: type[CustomerMerged] | type[CustomerUnmerged] | type[CustomerErased],
        tenant_id: str,
        customer_id: str,
        actor: str,
        now: datetime,
        **fields: Any,
    ) -> Outgoing:
        """A customer event for the outbox, keyed by tenant and customer: one customer's events stay in order."""
        event = kind(id=new_id(), tenant=tenant_id, actor=actor, time=now, **fields)
        return Outgoing(self.topics.customers, encode(event), key=f"{tenant_id}\x1f{customer_id}".encode())
