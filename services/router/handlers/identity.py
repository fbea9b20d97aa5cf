"""Who wrote: each event's sender (and what they claim) resolved to one customer, creating, linking and merging
customers as the identity graph decides (``domain/identity``), in the context stage's transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from services.router.domain.errors import InvalidIdentity
from services.router.domain.identity.graph import Ident, resolve
from services.router.domain.identity.normalize import normalize_identity
from services.router.domain.model import Tier, routing_attrs_of
from services.router.handlers.ports import UnitOfWork
from services.router.handlers.ports.records import NewCustomer, NewIdentity
from shared.events import ConversationEvent, IdentityKind
from shared.ids import new_id

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Inbound:
    event: ConversationEvent
    sender: Ident
    claims: tuple[Ident, ...]


def claims_of(event: ConversationEvent) -> tuple[Ident, ...]:
    out: list[Ident] = []
    for claim in event.sender.claims:
        try:
            out.append(Ident(claim.kind.value, normalize_identity(claim.kind, claim.value), claim.verified))
        except InvalidIdentity:
            continue  # a bad claim does not make the message bad; it is just not evidence
    return tuple(out)


def profile_of(event: ConversationEvent) -> dict[str, Any]:
    """What an app vouched for about its user: only from verified senders."""
    if not event.sender.verified:
        return {}
    attrs = dict(event.sender.attributes)
    values: dict[str, Any] = {}
    if attrs.get("tier") in set(Tier):
        values["tier"] = attrs.pop("tier")
    if "language" in attrs:
        values["language"] = attrs.pop("language")[:35]
    if attrs.get("owner_agent_id"):
        values["owner_agent_id"] = attrs.pop("owner_agent_id")
    if event.sender.display_name:
        values["name"] = event.sender.display_name
    if attrs:
        values["attributes"] = attrs
    return values


@dataclass(frozen=True, slots=True)
class Resolved:
    """Who wrote a batch: each event's customer, in order, and the customers the batch created."""

    customers: list[str]
    # created in the caller's transaction and not merged since: nothing about them was stored before it (no
    # conversation, no assignment), so what the batch would read of them is known without reading
    created: dict[str, NewCustomer]
    # what routing sees of stored customers the batch did not change (no profile vouched for, no merge), as
    # read to resolve them: no need to read it again
    unchanged: dict[str, dict[str, Any]]


async def resolve_customers(u: UnitOfWork, batch: list[Inbound], now: datetime) -> Resolved:
    """The customer of each event, creating, linking and merging per the identity graph."""
    keys = {(i.event.tenant, ident.kind, ident.value) for i in batch for ident in (i.sender, *i.claims)}
    owners: dict[str, dict[tuple[str, str], str]] = {}
    for (tenant, kind, value), cid in (await u.customers.customers_by_identity(keys)).items():
        owners.setdefault(tenant, {})[(kind, value)] = cid
    # A reply to our reply+<conversation>@ address names its conversation: an unknown sender address
    # joins that conversation's customer (the token is in the address only the thread has seen).
    tokens = {
        (i.event.tenant, i.event.thread_ref.removeprefix("conversation:"))
        for i in batch
        if i.event.thread_ref and i.event.thread_ref.startswith("conversation:")
    }
    token_owner = await u.customers.customers_of_conversations(tokens)
    stored = await u.customers.stored_customers({(tenant, c) for tenant, o in owners.items() for c in o.values()})
    seniority: dict[str, object] = {cid: (s.created_at, cid) for cid, s in stored.items()}
    new: dict[str, NewCustomer] = {}
    attach: list[NewIdentity] = []
    merges: list[tuple[str, str, str]] = []
    suggestions: list[tuple[str, str, str, str, str]] = []
    profiles: dict[str, dict[str, Any]] = {}
    customer_of: list[str] = []
    for n, item in enumerate(batch):
        tenant, event = item.event.tenant, item.event
        known = owners.setdefault(tenant, {})
        decision = resolve(item.sender, item.claims, known, seniority)
        hint = token_owner.get((event.thread_ref or "").removeprefix("conversation:"))
        if decision.customer_id is None and hint is not None:
            cid = hint
        elif decision.customer_id is None:
            cid = new_id()
            seniority[cid] = (now, f"~{n:08d}")  # newer than everyone already stored
            new[cid] = new_customer(item)
        else:
            cid = decision.customer_id
        for other in decision.merge:
            merges.append((tenant, cid, other))
            for key, owner in known.items():
                if owner == other:
                    known[key] = cid
        for ident in decision.attach:
            known[ident.key] = cid
            attach.append(NewIdentity(tenant, cid, ident.kind, ident.value, ident.verified))
        suggestions += [(tenant, cid, other, claim.kind, claim.value) for other, claim in decision.suggest]
        if cid not in new and (profile := profile_of(event)):
            profiles.setdefault(cid, {}).update(profile)
        customer_of.append(cid)

    tenant_of = {cid: batch[n].event.tenant for n, cid in enumerate(customer_of)}
    await _known_owners(u, new, profiles, tenant_of)
    await u.customers.insert_customers(new, now)
    await u.customers.attach_identities(attach, now)
    merged_into: dict[str, str] = {}
    for tenant, survivor, merged in merges:
        await u.customers.merge(tenant, survivor, merged, reason="verified_identifier", actor="router", now=now)
        await u.routing.bump_routing_version(tenant)
        merged_into[merged] = survivor

    def final(cid: str) -> str:
        while cid in merged_into:
            cid = merged_into[cid]
        return cid

    await u.customers.add_suggestions(
        [(t, final(c), final(o), k, v) for t, c, o, k, v in suggestions if final(c) != final(o)], now
    )
    await u.customers.apply_verified_profile({(tenant_of[c], final(c)): p for c, p in profiles.items()}, now)
    survivors = {survivor for _, survivor, _ in merges}
    created = {cid: n for cid, n in new.items() if cid not in merged_into and cid not in survivors}
    changed = profiles.keys() | merged_into.keys() | survivors
    unchanged = {cid: s.attrs for cid, s in stored.items() if cid not in changed}
    return Resolved([final(c) for c in customer_of], created, unchanged)


async def _known_owners(
    u: UnitOfWork, new: dict[str, NewCustomer], profiles: dict[str, dict[str, Any]], tenant_of: dict[str, str]
) -> None:
    """An owner an app named is kept only if it is an agent of the customer's tenant (one query for the batch,
    none when no message names one): a wrong id must not hold the customer's conversations for nobody."""
    named = {cid: n.owner_agent_id for cid, n in new.items() if n.owner_agent_id}
    named |= {cid: p["owner_agent_id"] for cid, p in profiles.items() if p.get("owner_agent_id")}
    if not named:
        return
    known = await u.routing.agents_known({(tenant_of[cid], agent) for cid, agent in named.items()})
    for cid, agent in named.items():
        if (tenant_of[cid], agent) in known:
            continue
        log.info("identity.unknown_owner_ignored", extra={"tenant": tenant_of[cid]})
        if cid in new:
            new[cid] = replace(new[cid], owner_agent_id=None)
        else:
            del profiles[cid]["owner_agent_id"]


def attrs_of_new(n: NewCustomer) -> dict[str, Any]:
    """What routing sees of a customer created with these values (``insert_customers``: no tags yet)."""
    return routing_attrs_of(n.tier, n.language, (), n.attributes, n.owner_agent_id)


def new_customer(item: Inbound) -> NewCustomer:
    """A new customer's profile from what the message says (contact details shown, not yet identities)."""
    event, sender = item.event, item.sender
    contact = {c.kind: c.value for c in item.claims}
    contact.setdefault(sender.kind, sender.value)
    profile = profile_of(event)
    return NewCustomer(
        tenant_id=event.tenant,
        kind=sender.kind,
        value=sender.value,
        verified=sender.verified,
        name=event.sender.display_name,
        email=contact.get(IdentityKind.EMAIL.value),
        phone=contact.get(IdentityKind.PHONE.value),
        language=profile.get("language"),
        tier=profile.get("tier", Tier.STANDARD.value),
        attributes=profile.get("attributes", {}),
        owner_agent_id=profile.get("owner_agent_id"),
    )
