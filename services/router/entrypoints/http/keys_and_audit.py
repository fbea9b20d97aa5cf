"""Tenant administration of access: API keys (shown once, stored hashed; rotation and revocation) and the audit
log of who read or changed what."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from services.router.adapters.db import api_keys
from services.router.adapters.db import tables as t
from services.router.adapters.views import queries
from services.router.domain.errors import InvalidCommand, NotFound
from services.router.entrypoints.http.deps import AdminPrincipal, RouterDep

router = APIRouter(tags=["access"])

MAX_PAGE = 500


class KeyIn(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=256)]
    role: Literal["app", "agent", "supervisor", "admin"]
    agent_id: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None, description="Role agent: the agent the key acts as (required for agent keys)."
    )


async def _create(router_: Any, tenant_id: str, name: str, role: str, agent_id: str | None) -> dict[str, Any]:
    if (role == "agent") != (agent_id is not None):
        raise InvalidCommand("agent keys name their agent_id; other roles have none")
    if agent_id is not None:
        async with router_.repo.reader() as conn:
            if not await queries.agent_exists(conn, tenant_id, agent_id):
                raise NotFound(f"no agent {agent_id}")
    key = api_keys.generate_key()
    ident = await api_keys.store_key(router_.db, tenant_id, key, role, name, router_.clock(), agent_id)
    return {
        "id": ident,
        "key": key,
        "prefix": api_keys.key_prefix(key),
        "name": name,
        "role": role,
        "agent_id": agent_id,
    }


@router.post("/v1/api-keys", status_code=201)
async def create_key(body: KeyIn, router_: RouterDep, principal: AdminPrincipal) -> dict[str, Any]:
    """A new key: ``key`` is shown in this response only (Switchboard keeps its SHA-256 hash)."""
    return await _create(router_, principal.tenant_id, body.name, body.role, body.agent_id)


@router.get("/v1/api-keys")
async def list_keys(router_: RouterDep, principal: AdminPrincipal) -> dict[str, Any]:
    """The tenant's keys by prefix, name and role (never the keys)."""
    async with router_.repo.reader() as conn:
        return {"items": await api_keys.list_keys(conn, principal.tenant_id)}


async def _revoke(router_: Any, tenant_id: str, key_id: str) -> dict[str, Any]:
    async with router_.db.transaction() as conn:
        revoked = await api_keys.revoke_key(conn, tenant_id, key_id, router_.clock())
    if revoked is None:
        raise NotFound(f"no API key {key_id}")
    router_.keys.forget(revoked.pop("key_hash"))
    return revoked


@router.delete("/v1/api-keys/{key_id}", status_code=204)
async def revoke_key(key_id: str, router_: RouterDep, principal: AdminPrincipal) -> Response:
    """Revoke: refused at once by this replica, by the others within 30 s (their key cache)."""
    await _revoke(router_, principal.tenant_id, key_id)
    return Response(status_code=204)


@router.post("/v1/api-keys/{key_id}/rotate", status_code=201)
async def rotate_key(key_id: str, router_: RouterDep, principal: AdminPrincipal) -> dict[str, Any]:
    """A new key with the same name, role and agent; the old one is revoked."""
    old = await _revoke(router_, principal.tenant_id, key_id)
    return await _create(router_, principal.tenant_id, old["name"], old["role"], old["agent_id"])


@router.get("/v1/audit")
async def audit_log(
    router_: RouterDep,
    principal: AdminPrincipal,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,18}$")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> dict[str, Any]:
    """Who read or changed what, newest first: actor (key prefix or token subject), role, route, the ids in its
    path, the status. Pass ``next_cursor`` back as ``cursor``."""
    a = t.audit_log.c
    query = select(a.seq, a.actor, a.role, a.method, a.route, a.target, a.status, a.at).where(
        a.tenant_id == principal.tenant_id
    )
    if cursor:
        query = query.where(a.seq < int(cursor))
    async with router_.repo.reader() as conn:
        rows = (await conn.execute(query.order_by(a.seq.desc()).limit(limit + 1))).all()
    items = [dict(r._mapping) for r in rows[:limit]]
    return {"items": items, "next_cursor": str(items[-1]["seq"]) if len(rows) > limit else None}
