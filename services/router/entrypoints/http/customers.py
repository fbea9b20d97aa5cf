"""The unified customer context: profile, identities, the cross-channel timeline, search by identifier,
profile edits, and supervisors' merge / unmerge."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.router.adapters.views import queries
from services.router.adapters.views import timeline as timelines
from services.router.domain.errors import InvalidCommand, NotFound
from services.router.domain.identity.normalize import parse_identifier
from services.router.domain.model import Tier
from services.router.entrypoints.http.deps import AdminPrincipal, RouterDep, StaffPrincipal, SupervisorPrincipal
from services.router.entrypoints.http.visibility import may_see_customer, read_one
from shared.routing_commands import Resolve

router = APIRouter(tags=["customers"])

MAX_PAGE = 200


@router.get("/v1/customers")
async def search_customers(
    router_: RouterDep,
    principal: SupervisorPrincipal,
    identifier: Annotated[
        str,
        Query(
            min_length=1, max_length=512, description="An email, a phone number, or channel:id such as telegram:12345"
        ),
    ],
) -> dict[str, Any]:
    """Find customers by an identifier, normalized the way incoming identities are (E.164, case-folded)."""
    kind, value = parse_identifier(identifier)
    async with router_.repo.reader() as conn:
        ids = await queries.customers_by_identifier(conn, principal.tenant_id, kind.value, value)
        items = [c for cid in ids if (c := await queries.customer(conn, principal.tenant_id, cid))]
    return {"identifier": {"kind": kind.value, "value": value}, "items": items}


@router.get("/v1/customers/{customer_id}")
async def get_customer(customer_id: str, router_: RouterDep, principal: StaffPrincipal) -> dict[str, Any]:
    """The unified customer: profile (name, tier, language, tags, attributes, owner, consent) and every
    identity on every channel. An agent sees only the customers of their conversations."""
    await may_see_customer(router_, principal, customer_id)
    return await read_one(router_, principal, queries.customer, customer_id, "customer")


@router.get("/v1/customers/{customer_id}/export")
async def export_customer(customer_id: str, router_: RouterDep, principal: AdminPrincipal) -> JSONResponse:
    """GDPR access and portability: everything stored about the customer in one JSON document (profile,
    identities, conversations with all messages, events, survey answers)."""
    found = await read_one(router_, principal, queries.export, customer_id, "customer")
    return JSONResponse(
        jsonable_encoder(found),
        headers={"Content-Disposition": f'attachment; filename="customer-{customer_id}.json"'},
    )


@router.get("/v1/customers/{customer_id}/timeline")
async def get_timeline(
    customer_id: str,
    router_: RouterDep,
    principal: StaffPrincipal,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,18}$")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> dict[str, Any]:
    """Every message and event on every channel, newest first. Pass ``next_cursor`` back as ``cursor``."""
    await may_see_customer(router_, principal, customer_id)
    async with router_.repo.reader() as conn:
        if await queries.customer(conn, principal.tenant_id, customer_id) is None:
            raise NotFound(f"no customer {customer_id}")
        page = await timelines.timeline(
            conn, principal.tenant_id, customer_id, int(cursor) if cursor else None, limit + 1
        )
    more = len(page) > limit
    page = page[:limit]
    return {"items": page, "next_cursor": str(page[-1]["seq"]) if more and page else None}


class ProfilePatch(BaseModel):
    """Fields present are replaced; fields absent are left as they are."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(max_length=256)] | None = None
    language: Annotated[str, Field(max_length=35, pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")] | None = None
    tier: Tier | None = None
    tags: Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=100)] | None = None
    consent: Annotated[dict[str, bool], Field(max_length=50)] | None = None
    attributes: Annotated[dict[str, str | int | float | bool | None], Field(max_length=100)] | None = None
    owner_agent_id: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None,
        description="The agent who owns this customer (their representative): routing prefers them in every "
        "queue, holding the conversation for the queue's owner_wait_s while they are busy. null clears it.",
    )


@router.patch("/v1/customers/{customer_id}")
async def patch_customer(
    customer_id: str, body: ProfilePatch, router_: RouterDep, principal: StaffPrincipal
) -> dict[str, Any]:
    """Edit the profile: fields present are replaced, absent ones kept; recorded on the customer's timeline. A
    change to tier, language, tags, attributes or owner updates the routing of their waiting work at once."""
    await may_see_customer(router_, principal, customer_id)
    values = body.model_dump(exclude_unset=True)
    if any(v is None for k, v in values.items() if k in ("tier", "tags", "consent", "attributes")):
        raise InvalidCommand("tier, tags, consent and attributes cannot be null")
    await router_.customers.update_profile(principal.tenant_id, customer_id, values, principal.key_prefix)
    return await get_customer(customer_id, router_, principal)


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: Annotated[str, Field(min_length=1, max_length=64, description="The customer to fold into this one.")]


class MergeOut(BaseModel):
    merge_id: str
    survivor_id: str
    merged_id: str


@router.post("/v1/customers/{customer_id}/merge", response_model=MergeOut)
async def merge(customer_id: str, body: MergeIn, router_: RouterDep, principal: SupervisorPrincipal) -> MergeOut:
    """Move everything of ``body.customer_id`` (identities, conversations, messages) to this customer.
    Recorded exactly, so unmerge restores it."""
    merge_id = await router_.customers.merge(principal.tenant_id, customer_id, body.customer_id, principal.key_prefix)
    return MergeOut(merge_id=merge_id, survivor_id=customer_id, merged_id=body.customer_id)


@router.post("/v1/customers/{customer_id}/unmerge", response_model=MergeOut)
async def unmerge(customer_id: str, body: MergeIn, router_: RouterDep, principal: SupervisorPrincipal) -> MergeOut:
    """Undo the latest merge of ``body.customer_id`` into this customer: what it moved moves back."""
    merge_id = await router_.customers.unmerge(principal.tenant_id, customer_id, body.customer_id, principal.key_prefix)
    return MergeOut(merge_id=merge_id, survivor_id=customer_id, merged_id=body.customer_id)


@router.delete("/v1/customers/{customer_id}")
async def erase(customer_id: str, router_: RouterDep, principal: AdminPrincipal) -> dict[str, Any]:
    """GDPR erasure: open conversations are resolved (no survey), then identities are deleted and every
    personal field is irreversibly blanked; events of the customer received before now, replayed from Kafka or
    still in flight, are dropped. ``customer.erased`` goes to the customer events topic. A customer who writes
    again later starts afresh."""
    tenant_id = principal.tenant_id
    for conversation_id in await router_.customers.open_conversations(tenant_id, customer_id):
        with contextlib.suppress(InvalidCommand, NotFound):  # resolved meanwhile
            await router_.commands.run(tenant_id, Resolve(conversation_id=conversation_id, survey="none"))
    return await router_.customers.erase(tenant_id, customer_id, principal.key_prefix)  # 404 if unknown
