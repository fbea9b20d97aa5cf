"""Figures of one benchmark phase from what was observed: latency from the feed events' own ids, batch sizes
from the consumer group's commits, the router's batch handling from its metrics, statements per batch, CPU per
message, and the spread of repeated runs."""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tests.bench.bench_routing import percentile
from tests.bench.observe import Batch
from tests.bench.workload import index_of

SIZE_BUCKETS = (1, 10, 50, 100, 250, 499, 500)


def spread_of(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 1),
        "p95": round(percentile(ordered, 0.95), 1),
        "p99": round(percentile(ordered, 0.99), 1),
        "max": round(ordered[-1], 1),
    }


def latency(
    tag: str, stamps: list[tuple[int, float]], follow_up: list[bool], seen: dict[str, tuple[float, str, str]]
) -> dict[str, Any]:
    """Produce → first sighting on the feed (and ``received_at`` → sighting), per event of phase ``tag``: for all
    seen, and apart for new customers' first messages (their offer or assignment) and follow-ups (a message
    event to the agent holding the conversation). A follow-up in a conversation still waiting for an agent
    has no feed event of its own: ``seen_share`` says how many had."""
    starts = [s for s, _ in stamps]
    by_produce: dict[str, list[float]] = {"all": [], "new": [], "follow_up": []}
    by_received: list[float] = []
    for event_id, (at, received, _) in seen.items():
        i = index_of(event_id, tag)
        if i is None or i >= len(follow_up):
            continue
        produced = stamps[bisect.bisect_right(starts, i) - 1][1]
        ms = (at - produced) * 1000
        by_produce["all"].append(ms)
        by_produce["follow_up" if follow_up[i] else "new"].append(ms)
        if received:
            by_received.append((at - datetime.fromisoformat(received).timestamp()) * 1000)
    out: dict[str, Any] = {"messages": len(follow_up), "seen": len(by_produce["all"])}
    out["seen_share"] = round(out["seen"] / max(1, len(follow_up)), 3)
    out["new_seen_share"] = round(len(by_produce["new"]) / max(1, follow_up.count(False)), 3)
    for kind, values in by_produce.items():
        if values:
            out[kind if kind != "all" else "produce_to_feed_ms"] = spread_of(values)
    if by_received:
        out["received_to_feed_ms"] = spread_of(by_received)
    return out


def batches(found: list[Batch], topic: str) -> dict[str, Any]:
    """How many records of ``topic`` each batch took (batches that took none, e.g. commands only, excluded)."""
    sizes = sorted(b.sizes.get(topic, 0) for b in found if b.sizes.get(topic, 0))
    if not sizes:
        return {"count": 0}
    histogram: dict[str, int] = {}
    low = 1
    for high in SIZE_BUCKETS:
        histogram[f"{low}-{high}" if high > low else str(high)] = sum(low <= s <= high for s in sizes)
        low = high + 1
    histogram[f"{low}+"] = sum(s >= low for s in sizes)
    return {
        "count": len(sizes),
        "mean": round(statistics.fmean(sizes), 1),
        "p50": sizes[len(sizes) // 2],
        "p90": sizes[min(len(sizes) - 1, int(0.9 * len(sizes)))],
        "max": sizes[-1],
        "histogram": {k: v for k, v in histogram.items() if v},
    }


@dataclass(frozen=True)
class Handled:
    """A consume loop's batches handled so far, as its ``switchboard_consumer_batch_seconds`` counts them."""

    batches: float = 0.0
    seconds: float = 0.0


def handling(before: Handled, after: Handled, phase_s: float) -> dict[str, Any]:
    """The batches handled between two readings: how many, their mean handling time, and the share of the
    phase the loop spent handling them (near 1: it went from one batch straight to the next, so each message
    waited for the batch before its own as well as for its own)."""
    count = after.batches - before.batches
    seconds = after.seconds - before.seconds
    if count <= 0:
        return {"batches": 0}
    return {
        "batches": round(count),
        "mean_ms": round(seconds / count * 1000, 1),
        "busy_share": round(seconds / max(phase_s, 1e-3), 2),
    }


def commit_rate(found: list[Batch], topic: str) -> float | None:
    """Records of ``topic`` per second from one commit to the last: measured between commits, because a batch
    of the router's can take seconds (each routing command is a transaction of its own), and counting whole
    batches in a fixed window would quantize the rate by them. None: fewer than two commits."""
    if len(found) < 2:
        return None
    records = sum(b.sizes.get(topic, 0) for b in found[1:])
    return records / max(found[-1].at - found[0].at, 1e-3)


def statements(before: dict[str, int], after: dict[str, int], batch_count: int, top: int = 8) -> dict[str, Any]:
    """Statement executions (pg_stat_statements calls; with asyncpg each is at least one round trip unless
    pipelined by executemany) per batch, and the most frequent statements."""
    delta = {q: after[q] - before.get(q, 0) for q in after if after[q] - before.get(q, 0) > 0}
    total = sum(delta.values())
    per = max(1, batch_count)
    return {
        "total": total,
        "per_batch": round(total / per, 1),
        "top_per_batch": [
            {"calls_per_batch": round(calls / per, 2), "statement": " ".join(query.split())[:90]}
            for query, calls in sorted(delta.items(), key=lambda kv: -kv[1])[:top]
        ],
    }


def cpu_per_message(spent: dict[str, float], messages: int) -> dict[str, float]:
    return {name: round(seconds * 1e6 / max(1, messages), 1) for name, seconds in spent.items()}


def run_spread(values: Sequence[float]) -> dict[str, Any]:
    """(max - min) / median of repeated runs: the issue wants three runs within 10%."""
    if not values:
        return {}
    middle = statistics.median(values)
    spread = (max(values) - min(values)) / middle if middle else 0.0
    return {"values": [round(v, 1) for v in values], "spread": round(spread, 3), "within_10pct": spread <= 0.10}
