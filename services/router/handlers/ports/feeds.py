"""Agents' feeds: the events consoles replay after a reconnect."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class Feeds(Protocol):
    async def add(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Append to agents' feeds; returns the rows with their feed sequence numbers, in order."""
        ...
