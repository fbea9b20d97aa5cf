"""Dead letters: what a consumer could never apply, with why; an admin lists them and redrives one after a
fix. Scoped to the caller's tenant."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.router.adapters.views import deadletters as store
from services.router.entrypoints.http.deps import AdminPrincipal, RouterDep
from services.router.entrypoints.http.params import QueryInstant
from services.router.entrypoints.http.visibility import read_one

router = APIRouter(tags=["operations"])


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    """The original bytes as text when they are UTF-8 (events and commands are JSON), else base64."""
    value: bytes = row["value"]
    try:
        body, encoding = value.decode(), "utf-8"
    except UnicodeDecodeError:
        body, encoding = base64.b64encode(value).decode(), "base64"
    return {
        "id": row["id"],
        "source": {"topic": row["topic"], "partition": row["partition"], "offset": row["offset"]},
        "reason": row["reason"],
        "kind": row["kind"],
        "deadlettered_at": row["deadlettered_at"],
        "redriven_at": row["redriven_at"],
        "redrives": row["redrives"],
        "key": row["key"].decode(errors="replace") if row["key"] is not None else None,
        "value": body,
        "value_encoding": encoding,
    }


@router.get("/v1/deadletters")
async def list_deadletters(
    router_: RouterDep,
    principal: AdminPrincipal,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[QueryInstant, Query(description="Older than this (the last item's deadlettered_at).")] = None,
) -> dict[str, Any]:
    """The tenant's dead letters, newest first: the original record, where it came from and why it could not be
    applied (``kind``: ``invalid`` when a schema refused it, else the class of the error)."""
    async with router_.repo.reader() as conn:
        rows = await store.page(conn, principal.tenant_id, limit, before)
    return {"items": [_shown(r) for r in rows]}


@router.get("/v1/deadletters/{deadletter_id}")
async def get_deadletter(deadletter_id: str, router_: RouterDep, principal: AdminPrincipal) -> dict[str, Any]:
    """One dead letter: the original record, where it came from and why it could not be applied."""
    return _shown(await read_one(router_, principal, store.one, deadletter_id, "dead letter"))


@router.post("/v1/deadletters/{deadletter_id}/redrive", status_code=202)
async def redrive_deadletter(deadletter_id: str, router_: RouterDep, principal: AdminPrincipal) -> dict[str, Any]:
    """Publish the original record again, with its key, to the topic it came from (after a fix). Safe to repeat:
    events and commands are deduplicated by their id. A dead letter from a webhook has no topic to go back to
    (409)."""
    return await router_.deadletters.redrive(principal.tenant_id, deadletter_id)
