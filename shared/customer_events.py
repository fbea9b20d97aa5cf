"""Customer events on ``customer.events`` (key: tenant + customer), as a versioned schema.

A supervisor's merge or unmerge of two customers, and a GDPR erasure (Art. 17) that every consumer must honour:
``customer.erased`` names ids and blob references only, never what was erased. One flat JSON object with the
same conventions and version rules as the agent feed (``shared/feed_events.py``): an unknown ``schema_version``
is refused, a record without one (written before it existed) is read as version 1.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, TypeAdapter, ValidationError

from shared import feed_events
from shared.feed_events import Id, Instant, Ref, Tenant, refusal, versioned

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = frozenset({SCHEMA_VERSION})


class _CustomerEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    schema_version: Literal[1] = 1
    id: Id
    tenant: Tenant
    actor: Ref  # the API key prefix (or user) that asked for it
    time: Instant


class CustomerMerged(_CustomerEvent):
    """``merged_id`` was folded into ``survivor_id`` (its identities, conversations and timeline)."""

    type: Literal["customer.merged"] = "customer.merged"
    merge_id: Id
    survivor_id: Id
    merged_id: Id


class CustomerUnmerged(_CustomerEvent):
    """The merge ``merge_id`` was undone: ``merged_id`` is a customer of its own again."""

    type: Literal["customer.unmerged"] = "customer.unmerged"
    merge_id: Id
    survivor_id: Id
    merged_id: Id


class CustomerErased(_CustomerEvent):
    """The customers (a merge family) were erased: delete what you hold of them, and the ``attachments`` blobs
    (references no other customer's message shares) if you store them."""

    type: Literal["customer.erased"] = "customer.erased"
    customer_ids: Annotated[list[Id], Field(min_length=1, max_length=1_000)]
    attachments: Annotated[list[Ref], Field(max_length=10_000)]


CustomerEvent = Annotated[CustomerMerged | CustomerUnmerged | CustomerErased, Discriminator("type")]
MERGE_EVENTS: dict[str, type[CustomerMerged] | type[CustomerUnmerged]] = {
    "customer.merged": CustomerMerged,
    "customer.unmerged": CustomerUnmerged,
}
_ADAPTER: TypeAdapter[CustomerEvent] = TypeAdapter(CustomerEvent)


def encode(event: CustomerEvent) -> bytes:
    """The event's record, written as the agent feed's are."""
    return feed_events.encode(event)


def decode(raw: bytes) -> CustomerEvent:
    """Parse and validate a ``customer.events`` record; ``InvalidEvent`` saying why not."""
    data = versioned(raw, SUPPORTED_SCHEMA_VERSIONS)
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise refusal(exc, "customer event") from exc
