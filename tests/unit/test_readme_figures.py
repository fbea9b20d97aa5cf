"""The README's Performance table shows what the benchmarks last recorded (tests/bench/results/latest.json),
so that a new recording and the table cannot drift apart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def performance_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("\n## Performance\n", 1)[1].split("\n## ", 1)[0]


def recorded() -> dict[str, Any]:
    return dict(json.loads((ROOT / "tests" / "bench" / "results" / "latest.json").read_text()))


def test_the_readmes_performance_table_shows_the_recorded_figures() -> None:
    r = recorded()
    http = r["http_ingest"]
    expected = [
        f"| {r['e2e_msgs_per_s']:,} msg/s, {r['ratio_to_bare']} of the bare pipeline "
        f"({r['bare_msgs_per_s']:,} msg/s) |",
        f"| {round(r['latency_ms']['1000']['p99']):,} ms ({round(r['latency_ms']['250']['p99']):,} ms) |",
        f"| {http['requests_per_s_per_replica_core']:,} req/s per core, p99 {round(http['latency_ms']['p99']):,} ms |",
        f"| {r['sla_timers']['fired_per_s']:,} /s |",
        f"| {r['takeover']['takeover_s_median']:.1f} s |",
        f"({r['routing_agents']:,} agents, {r['routing_waiting_conversations']:,} conversations waiting) | "
        f"{round(r['routing_decision_p99_us']):,} µs |",
    ]
    section = performance_section()
    assert [cell for cell in expected if cell not in section] == []
