"""More of a test desk than ``seed_demo`` (services/router/adapters/db/seed.py) gives it."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def online_agents(
    tenant: str, now: datetime, count: int, capacity: int, *, id_prefix: str, name: str
) -> list[dict[str, Any]]:
    """Rows of ``t.agents``: ``count`` agents of a seeded desk, online, with ``capacity`` for any channel, serving
    its messaging and general queues; ids ``{tenant}-{id_prefix}{i}``, names ``{name} {i}``."""
    queues = [f"{tenant}-q-messaging", f"{tenant}-q-general"]
    common = {
        "tenant_id": tenant,
        "presence": "online",
        "capacity": {"default": capacity},
        "queue_ids": queues,
        "created_at": now,
    }
    return [{"id": f"{tenant}-{id_prefix}{i}", "name": f"{name} {i}", **common} for i in range(count)]
