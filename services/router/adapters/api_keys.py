"""API keys: random, shown once, stored only as a SHA-256 hash (a fast hash is right for 256-bit random
secrets, as for GitHub or Stripe tokens) with a short prefix to tell keys apart in lists and logs."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select

from services.router.adapters import tables as t
from services.router.adapters.repository import new_id
from shared.store import Database

ROLES = ("app", "agent", "supervisor", "admin")


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: str
    role: str
    key_prefix: str

    def at_least(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def generate_key() -> str:
    return f"sb_{secrets.token_urlsafe(32)}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    return key[:10]


async def store_key(db: Database, tenant_id: str, key: str, role: str, name: str, now: datetime) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    async with db.transaction() as conn:
        existing = await conn.execute(select(t.api_keys.c.id).where(t.api_keys.c.key_hash == hash_key(key)))
        if existing.first() is None:
            await conn.execute(
                insert(t.api_keys).values(
                    id=new_id(),
                    tenant_id=tenant_id,
                    name=name,
                    prefix=key_prefix(key),
                    key_hash=hash_key(key),
                    role=role,
                    created_at=now,
                )
            )


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
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(k.tenant_id, k.role, k.prefix).where(k.key_hash == digest, k.revoked_at.is_(None))
                )
            ).first()
        principal = Principal(row.tenant_id, row.role, row.prefix) if row else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now + self.ttl_s, principal)
        return principal
