"""Routing decision time and memory per waiting conversation, on one tenant with 15,000 agents and
500,000 waiting conversations (the routing engine alone: the decision, not the I/O around it). Every agent
works to a routing profile (3 units, an email half of one, a call alone) and the VIP queue widens in three steps
(50 preferred agents, then VIP skill 2 or more, then anyone), so capacity in units and steps are in use.

    python -m tests.bench.bench_routing [--agents 15000] [--waiting 500000] [--decisions 20000]

Merges its figures into tests/bench/results/latest.json."""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

from services.router.domain.model import Presence
from services.router.domain.routing.capacity import Profile
from services.router.domain.routing.engine import RoutingEngine
from services.router.domain.routing.specs import AgentSpec, QueueSpec, Step

RESULTS = Path(__file__).parent / "results" / "latest.json"
CHANNELS = ["chat", "email", "whatsapp", "sms", "in_app"]
TIERS = ["standard"] * 8 + ["silver", "gold"]


PROFILE = Profile("standard", capacity=3, weights={"default": 1, "email": 0.5}, exclusive=frozenset({"voice"}))
VIP_STEPS = (
    Step(0, agents=frozenset(f"agent-{i}" for i in range(50))),
    Step(30, skills={"vip": 2}),
    Step(120),
)


def build(agents: int) -> RoutingEngine:
    engine = RoutingEngine()
    engine.upsert_queue(QueueSpec("email", rule={"attr": "channel", "eq": "email"}, order=0))
    engine.upsert_queue(QueueSpec("vip", rule={"attr": "tier", "in": ["gold", "platinum"]}, order=1, steps=VIP_STEPS))
    engine.upsert_queue(QueueSpec("messaging", is_default=True))
    for i in range(agents):
        queues = frozenset({"messaging", "vip"} if i % 3 else {"messaging", "email", "vip"})
        skills = {"vip": i % 4}
        engine.upsert_agent(AgentSpec(f"agent-{i}", queues, {"default": 3, "email": 5}, skills, profile=PROFILE))
        engine.set_presence(f"agent-{i}", Presence.ONLINE, 0.0)
    return engine


def say(line: str) -> None:
    """Progress on stderr, so the figures on stdout stay as they are."""
    print(line, file=sys.stderr, flush=True)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def run(agents: int, waiting: int, decisions: int, seed: int = 7) -> dict[str, float | int]:
    rnd = random.Random(seed)
    say(f"building the engine: {agents:,} agents")
    engine = build(agents)
    now = 1_800_000_000.0
    say("1/4 arrivals while agents have room")

    # 1. arrivals while agents have room: each one is a decision that picks an agent from the index
    arrival_ns: list[int] = []
    n = 0
    assigned: list[str] = []
    while True:
        n += 1
        cid = f"c{n}"
        t0 = time.perf_counter_ns()
        out = engine.arrive(cid, rnd.choice(CHANNELS), {"tier": rnd.choice(TIERS)}, now + n * 1e-3)
        arrival_ns.append(time.perf_counter_ns() - t0)
        if any(type(d).__name__ == "Assigned" for d in out):
            assigned.append(cid)
        else:
            break  # every agent is full on some channel: from here on, work waits
        if len(arrival_ns) > agents * 4:
            break

    # 2. fill the waiting lists to the target size; measure the memory they take
    say(f"2/4 filling the waiting lines to {waiting:,} (memory measured)")
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    base = n
    queued = 0
    while queued < waiting:  # arrivals that still find an agent with room on their channel do not count
        n += 1
        out = engine.arrive(f"c{n}", rnd.choice(CHANNELS), {"tier": rnd.choice(TIERS)}, now + n * 1e-3)
        if any(type(d).__name__ == "Assigned" for d in out):
            assigned.append(f"c{n}")
        else:
            queued += 1
            if queued % 100_000 == 0:
                say(f"    {queued:,} waiting")
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    in_queue = len(engine.waiting())
    bytes_per_waiting = grown / max(1, n - base)

    # 3. an arrival while 500,000 wait: queued by rule and priority (nobody has room)
    say(f"3/4 arrivals while {waiting:,} wait")
    queued_ns: list[int] = []
    for _ in range(min(decisions, 5_000)):
        n += 1
        t0 = time.perf_counter_ns()
        engine.arrive(f"c{n}", rnd.choice(CHANNELS), {"tier": rnd.choice(TIERS)}, now + n * 1e-3)
        queued_ns.append(time.perf_counter_ns() - t0)

    # 4. an agent finishes a conversation: the decision picks the next waiting conversation they can take
    say("4/4 agents freed: the next waiting conversation for each")
    free_ns: list[int] = []
    rnd.shuffle(assigned)
    for cid in assigned[:decisions]:
        t0 = time.perf_counter_ns()
        engine.resolve(cid, now + n * 1e-3)
        free_ns.append(time.perf_counter_ns() - t0)

    all_ns = arrival_ns[:decisions] + free_ns
    return {
        "routing_agents": agents,
        "routing_waiting_conversations": in_queue,
        "routing_decisions_measured": len(all_ns),
        "routing_decision_p50_us": round(statistics.median(all_ns) / 1000, 2),
        "routing_decision_p99_us": round(percentile([float(x) for x in all_ns], 0.99) / 1000, 2),
        "routing_arrival_p99_us": round(percentile([float(x) for x in arrival_ns], 0.99) / 1000, 2),
        "routing_agent_freed_p99_us": round(percentile([float(x) for x in free_ns], 0.99) / 1000, 2),
        "routing_arrival_while_waiting_p99_us": round(percentile([float(x) for x in queued_ns], 0.99) / 1000, 2),
        "bytes_per_waiting_conversation": round(bytes_per_waiting),
    }


def machine() -> dict[str, object]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent
        ).stdout.strip()
    except OSError:
        commit = "unknown"
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=15_000)
    parser.add_argument("--waiting", type=int, default=500_000)
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--no-record", action="store_true", help="print only; leave results/latest.json alone")
    args = parser.parse_args()
    started = time.time()
    figures = run(args.agents, args.waiting, args.decisions)
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    if args.no_record:
        return
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.update(figures)
    results["machine"] = machine()
    results["routing_measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"(targets: routing_decision_p99_us < 1000, bytes_per_waiting_conversation < 2048) -> {RESULTS}")


if __name__ == "__main__":
    main()
