"""Outcomes of routing commands: written in the transaction that applied the command, so a redelivered command
is answered, never applied twice, and whoever submitted it can read how it went."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

Outcome = tuple[int, dict[str, Any]]  # HTTP-like status, body ({"events": n} or {"error", "detail"})


class Applied(NamedTuple):
    """A command's outcome as stored with it."""

    command_id: str
    tenant_id: str
    kind: str
    outcome: Outcome


class AlreadyApplied(Exception):
    """The command's outcome is stored already: another writer (a replica that still thought it owned the
    tenant) applied it first. The transaction rolls back; the stored outcome stands."""


class CommandOutcomes(Protocol):
    async def get(self, tenant_id: str, command_id: str) -> Outcome | None: ...

    async def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[str, Outcome]:
        """The stored outcomes of those of these (tenant, command id) that have one, by command id."""
        ...

    async def record(self, command_id: str, tenant_id: str, kind: str, outcome: Outcome, now: datetime) -> None:
        """Raises ``AlreadyApplied`` if the command has an outcome already."""
        ...

    async def record_many(self, applied: Sequence[Applied], now: datetime) -> None:
        """Every outcome in one write; raises ``AlreadyApplied`` if any of the commands has one already."""
        ...

    async def forget_before(self, cutoff: datetime) -> int:
        """Drop outcomes older than ``cutoff``; returns how many."""
        ...
