"""Customers and their identities (the ``Customers`` port)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_, update

from services.router.adapters.db import erasure, merges
from services.router.adapters.db import tables as t
from services.router.adapters.db.bulk import insert_rows, update_rows
from services.router.adapters.db.keyed import Keyed
from services.router.adapters.db.repository import SqlRepository
from services.router.adapters.db.statements import insert_ignore, routing_attrs
from services.router.handlers.ports.records import (
    IdentityKey,
    NewCustomer,
    NewIdentity,
    StoredCustomer,
    fields_of,
)
from shared.ids import new_id

# What of a NewCustomer is stored as it is (its kind, value and verified make its first identity instead).
PROFILE_FIELDS = ("tenant_id", "name", "email", "phone", "language", "tier", "attributes", "owner_agent_id")
VOUCHED_FIELDS = ("name", "language", "tier", "attributes", "owner_agent_id")  # handlers/identity.py profile_of
KEY = ("tenant_id", "id")  # a customer's row, found by its tenant's key (tables/context.py)

_i, _c, _cu, _s = t.identities.c, t.conversations.c, t.customers.c, t.assignments.c
_BY_IDENTITY = Keyed(select(_i.tenant_id, _i.kind, _i.value, _i.customer_id), tuple_(_i.tenant_id, _i.kind, _i.value))
_UNMERGED = Keyed(select(_c.id, _c.customer_id).where(_c.status != "merged"), tuple_(_c.tenant_id, _c.id))
_STORED = Keyed(
    select(_cu.id, _cu.created_at, _cu.tier, _cu.language, _cu.tags, _cu.attributes, _cu.owner_agent_id),
    tuple_(_cu.tenant_id, _cu.id),
)
_LAST_AGENTS = Keyed(
    select(_c.customer_id, _s.agent_id)
    .join(t.assignments, (_s.tenant_id == _c.tenant_id) & (_s.conversation_id == _c.id))
    .where(_s.accepted_at.is_not(None))
    .order_by(_c.customer_id, _s.accepted_at.desc(), _s.seq.desc()),
    tuple_(_c.tenant_id, _c.customer_id),
)


class SqlCustomers(SqlRepository):
    """Customers and identities in one transaction."""

    async def customers_by_identity(self, keys: Iterable[IdentityKey]) -> dict[IdentityKey, str]:
        return {(r[0], r[1], r[2]): r[3] for r in await _BY_IDENTITY.run(self.conn, keys)}

    async def customers_of_conversations(self, keys: Iterable[tuple[str, str]]) -> dict[str, str]:
        return {r.id: r.customer_id for r in await _UNMERGED.run(self.conn, keys)}

    async def stored_customers(self, keys: Iterable[tuple[str, str]]) -> dict[str, StoredCustomer]:
        return {r.id: StoredCustomer(r.created_at, routing_attrs(r)) for r in await _STORED.run(self.conn, keys)}

    async def insert_customers(self, new: dict[str, NewCustomer], now: datetime) -> None:
        if new:
            await insert_rows(
                self.conn,
                t.customers,
                [
                    dict(id=cid, tags=[], consent={}, created_at=now, **{f: getattr(n, f) for f in PROFILE_FIELDS})
                    for cid, n in new.items()
                ],
            )

    async def attach_identities(self, rows: Sequence[NewIdentity], now: datetime) -> None:
        if rows:
            ordered = sorted(rows, key=lambda r: (r.tenant_id, r.kind, r.value))
            await insert_rows(
                self.conn,
                t.identities,
                [dict(id=new_id(), created_at=now, **fields_of(r)) for r in ordered],
                ignore_conflicts=True,
            )

    async def add_suggestions(self, rows: Sequence[tuple[str, str, str, str, str]], now: datetime) -> None:
        if rows:
            await self.conn.execute(
                insert_ignore(self.dialect, t.suggestions),
                [
                    dict(id=new_id(), tenant_id=tn, customer_id=c, other_customer_id=o, kind=k, value=v, created_at=now)
                    for tn, c, o, k, v in rows
                ],
            )

    async def apply_verified_profile(self, updates: Mapping[tuple[str, str], dict[str, Any]], now: datetime) -> None:
        """One statement for the batch, whatever its number of customers; a field a customer's update leaves
        out keeps what is stored."""
        unknown = {f for values in updates.values() for f in values} - set(VOUCHED_FIELDS)
        if unknown:
            raise ValueError(f"not a field an app vouches for: {sorted(unknown)}")
        rows = [
            dict(tenant_id=tn, id=cid, **{f: values.get(f) for f in VOUCHED_FIELDS})
            for (tn, cid), values in updates.items()
            if values
        ]
        await update_rows(self.conn, t.customers, rows, key=KEY, or_stored=frozenset(VOUCHED_FIELDS), updated_at=now)

    async def customer_attrs(self, keys: Iterable[tuple[str, str]]) -> dict[str, dict[str, Any]]:
        return {cid: s.attrs for cid, s in (await self.stored_customers(keys)).items()}

    async def set_detected_languages(
        self, detected: Mapping[tuple[str, str], tuple[str, float]], now: datetime
    ) -> None:
        if not detected:
            return
        rows = [
            dict(tenant_id=tn, id=cid, language=lang, language_confidence=conf)
            for (tn, cid), (lang, conf) in detected.items()
        ]
        # never over a language the app or an agent set
        await update_rows(self.conn, t.customers, rows, key=KEY, unless_set="language", updated_at=now)

    async def last_agents(self, keys: Sequence[tuple[str, str]]) -> dict[str, str]:
        last: dict[str, str] = {}
        for r in await _LAST_AGENTS.run(self.conn, keys):
            last.setdefault(r.customer_id, r.agent_id)
        return last

    async def merge(self, tenant_id: str, survivor: str, merged: str, *, reason: str, actor: str, now: datetime) -> str:
        return await merges.merge_customers(self.conn, tenant_id, survivor, merged, reason=reason, actor=actor, now=now)

    async def unmerge(self, tenant_id: str, survivor: str, merged: str, *, actor: str, now: datetime) -> str:
        return await merges.unmerge_customers(self.conn, tenant_id, survivor, merged, actor=actor, now=now)

    async def erase(self, tenant_id: str, customer_id: str, key: bytes, now: datetime) -> dict[str, Any] | None:
        return await erasure.erase_customer(self.conn, tenant_id, customer_id, key, now)

    async def erased_senders(
        self, key: bytes, senders: Iterable[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], datetime]:
        return await erasure.erased_senders(self.conn, key, senders)

    async def apply_retention(self, cutoff: datetime, now: datetime) -> int:
        return await erasure.apply_retention(self.conn, cutoff, now)

    async def update_profile(self, tenant_id: str, customer_id: str, values: dict[str, Any], now: datetime) -> bool:
        c = t.customers.c
        done = await self.conn.execute(
            update(t.customers).where(c.tenant_id == tenant_id, c.id == customer_id).values(**values, updated_at=now)
        )
        return bool(done.rowcount)

    async def open_conversations(self, tenant_id: str, customer_id: str) -> list[str]:
        family = await erasure.customer_family(self.conn, tenant_id, customer_id)
        c = t.conversations.c
        rows = await self.conn.execute(
            select(c.id).where(c.tenant_id == tenant_id, c.customer_id.in_(family), c.status == "open")
        )
        return [r.id for r in rows]
