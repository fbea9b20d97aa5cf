"""The identity graph's rules: which customer a message belongs to, given who owns which identifiers.

- An identity seen before maps to its customer.
- A **verified** identifier (a WhatsApp/SMS phone, an email an app vouched for with user_hash) that is
  already owned by a customer links the new identity to that customer. Verified identifiers owned by two
  different customers are proof that they are one person: those customers are merged (reversibly).
- **Unverified** claims (a pre-chat form's email) are never merged on: where they match another customer,
  a suggestion is recorded for a supervisor to decide.

Pure: it takes the owners map and returns a decision; the adapter loads and writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

IdentKey = tuple[str, str]  # kind, normalized value


@dataclass(frozen=True, slots=True)
class Ident:
    kind: str
    value: str
    verified: bool = False

    @property
    def key(self) -> IdentKey:
        return (self.kind, self.value)


@dataclass(frozen=True, slots=True)
class Resolution:
    customer_id: str | None  # None: a new customer
    attach: tuple[Ident, ...] = ()  # identities the customer gains
    merge: tuple[str, ...] = ()  # customers proven to be this one: merge them into customer_id
    suggest: tuple[tuple[str, Ident], ...] = field(default=())  # (other customer, unverified claim)


def resolve(
    sender: Ident,
    claims: Sequence[Ident],
    owners: Mapping[IdentKey, str],
    seniority: Mapping[str, object] | None = None,
) -> Resolution:
    """``seniority``: customer id → a sortable age (oldest first); the oldest proven customer survives."""
    rank = (lambda cid: (seniority.get(cid), cid)) if seniority else (lambda cid: ("", cid))

    sender_owner = owners.get(sender.key)
    evidence: list[str] = []
    for claim in claims:
        owner = owners.get(claim.key)
        if claim.verified and owner is not None and owner not in evidence:
            evidence.append(owner)

    if sender_owner is not None:
        target: str | None = sender_owner
    elif evidence:
        target = min(evidence, key=rank)
    else:
        target = None
    merge = tuple(sorted({c for c in evidence if c != target}, key=rank))

    attach: list[Ident] = []
    seen: set[IdentKey] = set()
    for ident in (sender, *(c for c in claims if c.verified)):
        if ident.key not in owners and ident.key not in seen:
            attach.append(ident)
            seen.add(ident.key)

    suggest: list[tuple[str, Ident]] = []
    for claim in claims:
        owner = owners.get(claim.key)
        if not claim.verified and owner is not None and owner != target and owner not in merge:
            suggest.append((owner, claim))
    return Resolution(target, tuple(attach), merge, tuple(suggest))
