"""The audit trail (``handlers/audit.py``): who read or changed what."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One authenticated API call: actor (key prefix or token subject), role, the route template (never a query
    string), the ids in its path, the status."""

    tenant_id: str
    actor: str
    role: str
    method: str
    route: str
    status: int
    target: dict[str, str] = field(default_factory=dict)


class Audit(Protocol):
    async def record(self, entry: AuditEntry, at: datetime) -> None: ...
