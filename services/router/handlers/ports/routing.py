"""What a routing transaction reads and writes: the tenant's lock and version, queues, agents, assignments."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from services.router.domain.model import AgentRow, Assignment, QueueRule
from services.router.domain.routing.restore import StoredWork
from services.router.handlers.ports.records import AgentFacts

# (tenant, conversation id) → its routing fact (None: it left routing), and → the queue it waits in (None: none).
Facts = Mapping[tuple[str, str], Mapping[str, Any] | None]
Queued = Mapping[tuple[str, str], str | None]


class Routing(Protocol):
    async def lock_tenants(self, tenant_ids: Iterable[str]) -> None:
        """Serialize identity resolution per tenant across router replicas (PostgreSQL advisory lock, held to
        the end of the transaction). Routing locks the tenant's agents anyway; this lock also makes merges
        and "new identity, verified claim" links race-free. SQLite has a single writer already."""
        ...

    async def routing_versions(self, tenant_ids: Iterable[str]) -> dict[str, int]:
        """Each tenant's routing version, their rows locked (in id order) until the transaction ends
        (PostgreSQL)."""
        ...

    async def bump_routing_version(self, tenant_id: str, state: Mapping[str, Any] | None = None) -> None:
        """Invalidate every cached routing state of the tenant (theirs at once, ours unless re-cached); a routing
        transaction also stores the engine's counters (``state``) with it."""
        ...

    async def store_routing_states(self, states: Mapping[str, Mapping[str, Any]]) -> None:
        """``bump_routing_version`` of many tenants, each with its engine's counters, in one write: what a
        routing pass over them ends with."""
        ...

    async def routing_state(self, tenant_id: str) -> dict[str, Any]:
        """The engine's counters as last stored (empty if never)."""
        ...

    async def store_facts(self, facts: Facts, queued: Queued | None = None, now: datetime | None = None) -> None:
        """Each conversation's routing fact as it is now (None: it left routing) and, for those ``queued``, the
        queue where it waits now (routing decided it) and since ``now`` (the first queueing time is kept, since
        the wait is the customer's, whichever queue it moves to): each conversation's row written once."""
        ...

    async def customer_facts(self, tenant_id: str, customer_id: str) -> dict[str, dict[str, Any]]:
        """The routing facts of the customer's open conversations."""
        ...

    async def store_agents(self, agents: Mapping[str, Sequence[AgentFacts]]) -> None:
        """Agents' presence and last assignment time as routing has them; the reason and time of a presence
        change where there was one."""
        ...

    async def tenants_with_due_routing(self, now: datetime) -> list[str]:
        """Tenants with offers past their expiry: after a replica died, nobody else's timer would end them.
        (Waiting work is routed by the next event of its tenant: a message, a presence change, a resolve.)"""
        ...

    async def queue_rules(self, tenant_id: str) -> list[QueueRule]: ...

    async def lock_agents(self, tenant_id: str) -> list[AgentRow]:
        """The tenant's agents, rows locked (PostgreSQL) until the routing transaction ends."""
        ...

    async def open_conversations_for_routing(self, tenant_id: str) -> list[StoredWork]:
        """Every open conversation, oldest first, as a rebuild needs it: channel, queue, the agent who holds it
        (offered until when, if not accepted), since when it waits, the customer's routing attributes, and its
        routing fact (None if it has none yet)."""
        ...

    async def end_assignments(self, keys: Sequence[tuple[str, str]], now: datetime) -> None:
        """Take these (tenant, conversation id) back from their agents (agent offline, transfer): they wait in
        their queue again."""
        ...

    async def record_assignments(
        self, assignments: Mapping[str, Sequence[Assignment]], written: Collection[str] = ()
    ) -> list[dict[str, Any]]:
        """Insert each tenant's assignments and point their conversations at them, but for the conversations in
        ``written`` (inserted already pointing at their agent). Returns the stored rows (with their feed
        sequence numbers)."""
        ...

    async def accept_offers(self, keys: Sequence[tuple[str, str]], now: datetime) -> None:
        """Offers of these (tenant, conversation id) accepted: the live assignment stays (same row), now held for
        good."""
        ...

    async def agent_exists(self, tenant_id: str, agent_id: str) -> bool: ...

    async def agents_known(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (tenant, agent id) pairs name an agent, in one query."""

    async def average_handle_s(self, tenant_ids: Iterable[str], last: int = 200) -> dict[str, float]:
        """Each tenant's mean assigned → ended time of its latest ``last`` finished assignments (absent if none):
        the handle time of the expected wait, as the live queue stats count it; one read for all."""
        ...
