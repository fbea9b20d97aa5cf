"""Customers and their identities, as the context stage resolves them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from services.router.handlers.ports.records import IdentityKey, NewCustomer, NewIdentity, StoredCustomer


class Customers(Protocol):
    async def customers_by_identity(self, keys: Iterable[IdentityKey]) -> dict[IdentityKey, str]: ...

    async def customers_of_conversations(self, keys: Iterable[tuple[str, str]]) -> dict[str, str]:
        """(tenant, conversation id) → customer id, for replies that name their conversation."""
        ...

    async def stored_customers(self, keys: Iterable[tuple[str, str]]) -> dict[str, StoredCustomer]:
        """(tenant, customer id) → by customer id: when each customer was created, and what routing sees of them
        (``customer_attrs``) as stored now."""
        ...

    async def insert_customers(self, new: dict[str, NewCustomer], now: datetime) -> None: ...

    async def attach_identities(self, rows: Sequence[NewIdentity], now: datetime) -> None:
        """Identities in key order (no lock-order deadlocks); one owner each, the unique index decides."""
        ...

    async def add_suggestions(self, rows: Sequence[tuple[str, str, str, str, str]], now: datetime) -> None:
        """(tenant, customer, other customer, kind, value): "may be the same person", for a human to decide."""
        ...

    async def apply_verified_profile(self, updates: Mapping[tuple[str, str], dict[str, Any]], now: datetime) -> None:
        """(tenant, customer id) → profile fields an app vouched for (tier, language, name)."""
        ...

    async def set_detected_languages(
        self, detected: Mapping[tuple[str, str], tuple[str, float]], now: datetime
    ) -> None:
        """(tenant, customer id) → (language, confidence) detected from their messages; stored only where none
        is set."""
        ...

    async def customer_attrs(self, keys: Iterable[tuple[str, str]]) -> dict[str, dict[str, Any]]:
        """(tenant, customer id) → by customer id: what routing sees of each customer: tier, language, tags,
        attributes, ``owner_agent_id``."""
        ...

    async def last_agents(self, keys: Sequence[tuple[str, str]]) -> dict[str, str]:
        """(tenant, customer id) → by customer id: who last helped each customer, the agent of their latest
        accepted assignment (none: not listed)."""
        ...

    async def merge(self, tenant_id: str, survivor: str, merged: str, *, reason: str, actor: str, now: datetime) -> str:
        """Fold ``merged`` into ``survivor`` (identities, conversations, profile gaps); returns the merge id."""
        ...

    async def unmerge(self, tenant_id: str, survivor: str, merged: str, *, actor: str, now: datetime) -> str:
        """Undo exactly what the latest merge of the two moved; returns its merge id."""
        ...

    async def erase(self, tenant_id: str, customer_id: str, key: bytes, now: datetime) -> dict[str, Any] | None:
        """GDPR erasure; None if the tenant has no such customer (see adapters/db/erasure.py)."""
        ...

    async def erased_senders(
        self, key: bytes, senders: Iterable[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], datetime]:
        """(tenant, kind, value) → when it was erased, for those that were."""
        ...

    async def apply_retention(self, cutoff: datetime, now: datetime) -> int:
        """Blank a batch of conversations closed before ``cutoff``; returns how many."""
        ...

    async def update_profile(self, tenant_id: str, customer_id: str, values: dict[str, Any], now: datetime) -> bool:
        """Replace the profile fields given (a staff edit); False if the tenant has no such customer."""
        ...

    async def open_conversations(self, tenant_id: str, customer_id: str) -> list[str]:
        """Ids of the open conversations of the customer and of every customer merged into them."""
        ...
