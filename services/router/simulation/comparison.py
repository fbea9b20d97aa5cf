"""A baseline and a proposal side by side: every figure of both reports with its difference (proposal minus
baseline; a percentage's difference is in points of the same 0-1 scale)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Side = dict[str, dict[str, Any]]


def side_by_side(baseline: Mapping[str, Any], proposal: Mapping[str, Any]) -> Side:
    out: Side = {}
    for key in [*baseline, *(k for k in proposal if k not in baseline)]:
        a, b = baseline.get(key), proposal.get(key)
        if isinstance(a, str) or isinstance(b, str):
            continue  # labels, not figures
        difference = round(b - a, 4) if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None
        out[key] = {"baseline": a, "proposal": b, "difference": difference}
    return out


def compare(baseline: Mapping[str, Any], proposal: Mapping[str, Any]) -> dict[str, Any]:
    """Totals, each queue, each channel, each hour and each agent, as the two reports have them (a queue or
    channel only one of them has is compared with nothing)."""

    def each(section: str) -> dict[str, Side]:
        a, b = baseline.get(section, {}), proposal.get(section, {})
        return {key: side_by_side(a.get(key, {}), b.get(key, {})) for key in sorted(a.keys() | b.keys())}

    hours_a, hours_b = baseline.get("hours", []), proposal.get("hours", [])
    return {
        "total": side_by_side(baseline["total"], proposal["total"]),
        "queues": each("queues"),
        "channels": each("channels"),
        "hours": [
            {"hour": a["hour"], "at": a["at"]} | side_by_side(a, b) for a, b in zip(hours_a, hours_b, strict=False)
        ],
        "agents": each("agents"),
    }
