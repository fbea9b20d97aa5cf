"""API keys: random, shown once, stored only as a SHA-256 hash (a fast hash is right for 256-bit random
secrets, as for GitHub or Stripe tokens) with a short prefix to tell keys apart in lists and logs."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from services.router.adapters.db import tables as t
from services.router.adapters.db.repository import SqlRepository
from shared.ids import new_id
from shared.store import Database

ROLES = ("app", "agent", "supervisor", "admin")


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: str
    role: str
    key_prefix: str  # who, in logs, rate limits and the audit log (never the secret)
    agent_id: str | None = None  # role "agent": the agent this key or token acts as

    def at_least(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def generate_key() -> str:
    return f"sb_{secrets.token_urlsafe(32)}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    return key[:10]


async def store_key(
    db: Database, tenant_id: str, key: str, role: str, name: str, now: datetime, agent_id: str | None = None
) -> str:
    """Store ``key`` (its hash) unless it is stored already; returns the key's id. For seeding and tests: the
    API creates keys through ``handlers/access.py``."""
    async with db.transaction() as conn:
        row = await SqlApiKeys(conn, db.dialect).add(tenant_id, key, role, name, now, agent_id)
    return str(row["id"])


def key_row(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "role": row.role,
        "agent_id": row.agent_id,
        "created_at": row.created_at,
        "revoked_at": row.revoked_at,
    }


k = t.api_keys.c
LISTED = (k.id, k.name, k.prefix, k.role, k.agent_id, k.created_at, k.revoked_at)


class SqlApiKeys(SqlRepository):
    """The ``ApiKeys`` port: keys stored as their SHA-256 hash and a prefix."""

    async def add(
        self, tenant_id: str, key: str, role: str, name: str, now: datetime, agent_id: str | None = None
    ) -> dict[str, Any]:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        existing = (await self.conn.execute(select(*LISTED).where(k.key_hash == hash_key(key)))).first()
        if existing is not None:
            return key_row(existing)
        row = {
            "id": new_id(),
            "name": name,
            "prefix": key_prefix(key),
            "role": role,
            "agent_id": agent_id,
            "created_at": now,
        }
        await self.conn.execute(insert(t.api_keys).values(tenant_id=tenant_id, key_hash=hash_key(key), **row))
        return {**row, "revoked_at": None}

    async def listed(self, tenant_id: str) -> list[dict[str, Any]]:
        rows = await self.conn.execute(select(*LISTED).where(k.tenant_id == tenant_id).order_by(k.created_at, k.id))
        return [key_row(r) for r in rows]

    async def revoke(self, tenant_id: str, key_id: str, now: datetime) -> dict[str, Any] | None:
        """Revoke (idempotent); None if the tenant has no such key."""
        row = (
            await self.conn.execute(select(*LISTED, k.key_hash).where(k.tenant_id == tenant_id, k.id == key_id))
        ).first()
        if row is None:
            return None
        if row.revoked_at is None:
            await self.conn.execute(
                update(t.api_keys).where(k.tenant_id == tenant_id, k.id == key_id).values(revoked_at=now)
            )
        return {**key_row(row), "revoked_at": row.revoked_at or now, "key_hash": row.key_hash}


class KeyVerifier:
    """Looks keys up by hash, caching answers briefly so the ingest hot path does not hit the database per
    request; a revocation takes effect within ``ttl_s``."""

    def __init__(self, db: Database, ttl_s: float = 30.0) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def verify(self, key: str) -> Principal | None:
        digest = hash_key(key)
        hit = self._cache.get(digest)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        k = t.api_keys.c
        async with self.db.read(snapshot=False) as conn:
            row = (
                await conn.execute(
                    select(k.tenant_id, k.role, k.prefix, k.agent_id).where(
                        k.key_hash == digest, k.revoked_at.is_(None)
                    )
                )
            ).first()
        principal = Principal(row.tenant_id, row.role, row.prefix, row.agent_id) if row else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now + self.ttl_s, principal)
        return principal

    def forget(self, digest: str) -> None:
        """A key revoked through this replica stops working here at once (elsewhere within ``ttl_s``)."""
        self._cache.pop(digest, None)
