"""Tenant administration of access: API keys (shown once, stored hashed; rotation and revocation) and the audit
log of who read or changed what."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from services.router.adapters.views import audit
from services.router.entrypoints.http.deps import AdminPrincipal, RouterDep

router = APIRouter(tags=["access"])

MAX_PAGE = 500


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=256)]
    role: Literal["app", "agent", "supervisor", "admin"]
    agent_id: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None, description="Role agent: the agent the key acts as (required for agent keys)."
    )


@router.post("/v1/api-keys", status_code=201)
async def create_key(body: KeyIn, router_: RouterDep, principal: AdminPrincipal) -> dict[str, Any]:
    """A new key: ``key`` is shown in this response only (Switchboard keeps its SHA-256 hash)."""
    return await router_.access.create(principal.tenant_id, body.name, body.role, body.agent_id)


@router.get("/v1/api-keys")
async def list_keys(router_: RouterDep, principal: AdminPrincipal) -> dict[str, Any]:
    """The tenant's keys by prefix, name and role (never the keys)."""
    return {"items": await router_.access.listed(principal.tenant_id)}


@router.delete("/v1/api-keys/{key_id}", status_code=204)
async def revoke_key(key_id: str, router_: RouterDep, principal: AdminPrincipal) -> Response:
    """Revoke: refused at once by this replica, by the others within 30 s (their key cache)."""
    await router_.access.revoke(principal.tenant_id, key_id)
    return Response(status_code=204)


@router.post("/v1/api-keys/{key_id}/rotate", status_code=201)
async def rotate_key(key_id: str, router_: RouterDep, principal: AdminPrincipal) -> dict[str, Any]:
    """A new key with the same name, role and agent; the old one is revoked."""
    return await router_.access.rotate(principal.tenant_id, key_id)


@router.get("/v1/audit")
async def audit_log(
    router_: RouterDep,
    principal: AdminPrincipal,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,18}$")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> dict[str, Any]:
    """Who read or changed what, newest first: actor (key prefix or token subject), role, route, the ids in its
    path, the status. Pass ``next_cursor`` back as ``cursor``."""
    async with router_.repo.reader() as conn:
        rows = await audit.page(conn, principal.tenant_id, limit + 1, int(cursor) if cursor else None)
    items = rows[:limit]
    return {"items": items, "next_cursor": str(items[-1]["seq"]) if len(rows) > limit else None}
