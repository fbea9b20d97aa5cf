"""Simulation speed: one day of 100,000 conversations on a desk of 500 agents, run
through the production routing engine on the simulated clock, on one core. Target: under 60 s.

The desk is a realistic mix, so the engine's costly paths are in use: a routing profile (3 units, an email half
of one), an email queue, a VIP queue that offers (30 s timeout, some declines and missed offers) and widens in
two steps, a default messaging queue; agents in three overlapping shifts; a daily arrival curve peaking
mid-morning; lognormal handle times; impatient customers on chat.

    python -m tests.bench.bench_simulation [--conversations 100000] [--agents 500] [--no-record]

Merges its figures into tests/bench/results/latest.json (unless --no-record)."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from services.router.simulation.desk import desk_of
from services.router.simulation.report import report
from services.router.simulation.simulator import simulate
from services.router.simulation.traffic import traffic_of
from tests.bench.bench_routing import RESULTS, machine

TARGET_S = 60.0
# the share of a day's arrivals in each hour: quiet nights, a morning peak, a long afternoon
CURVE = [1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 7, 6, 6, 7, 7, 6, 5, 4, 3, 3, 2, 2, 1]
MIX = [  # channel, tier, share of the traffic, mean handle time, patience (None: never abandons)
    ("chat", "standard", 0.45, 360.0, 600.0),
    ("whatsapp", "standard", 0.15, 600.0, None),
    ("email", "standard", 0.25, 480.0, None),
    ("chat", "gold", 0.10, 360.0, 900.0),
    ("in_app", "silver", 0.05, 300.0, 1200.0),
]


def desk(agents: int) -> dict[str, Any]:
    """Three shifts of agents; every third agent also answers email; every fifth is a VIP specialist."""
    shifts = [["06:00-14:00"], ["10:00-18:00"], ["14:00-22:00"]]
    groups = []
    per_group = agents // 15
    for shift_index, shift in enumerate(shifts):
        for kind in range(5):
            queues = ["messaging", "vip"] + (["email"] if kind % 3 == 0 else [])
            groups.append(
                {
                    "id": f"s{shift_index}-k{kind}",
                    "name": f"shift {shift_index} kind {kind}",
                    "count": per_group,
                    "queue_ids": queues,
                    "profile_id": "standard",
                    "skills": {"vip": 3 if kind == 4 else 1},
                    "shifts": shift,
                }
            )
    night = {"count": agents - per_group * 15, "queue_ids": ["messaging", "email", "vip"], "shifts": ["22:00-06:00"]}
    groups.append({"id": "night", "name": "night", "profile_id": "standard", **night})
    return {
        "profiles": [{"id": "standard", "name": "Standard", "capacity": 3, "weights": {"default": 1, "email": 0.5}}],
        "queues": [
            {"id": "email", "name": "Email", "channels": ["email"]},
            {
                "id": "vip",
                "name": "VIP",
                "routing": {
                    "rule": {"attr": "tier", "in": ["gold", "platinum"]},
                    "offer_timeout_s": 30,
                    "steps": [{"after_s": 0, "skills": {"vip": 3}}, {"after_s": 60}],
                    "sla": {"first_response_s": {"default": 60}},
                },
            },
            {"id": "messaging", "name": "Messaging", "is_default": True},
        ],
        "agents": groups,
        "behaviour": {"accept_after_s": 4, "decline_rate": 0.03, "miss_rate": 0.01, "back_after_missed_s": 90},
    }


def traffic(conversations: int) -> dict[str, Any]:
    total = sum(CURVE)
    streams = []
    for channel, tier, share, handle, patience in MIX:
        stream: dict[str, Any] = {
            "channel": channel,
            "tier": tier,
            "per_hour": [conversations * share * c / total for c in CURVE],
            "handle": {"distribution": "lognormal", "mean_s": handle, "sd_s": handle * 0.8},
        }
        if patience is not None:
            stream["patience"] = {"mean_s": patience}
        streams.append(stream)
    return {"start": "2026-01-05T00:00:00Z", "hours": 24, "streams": streams}


def run(conversations: int, agents: int, seed: int = 7) -> dict[str, Any]:
    the_desk = desk_of(desk(agents))
    workload = traffic_of(traffic(conversations), seed=seed)
    started = time.process_time()  # CPU time: the one core the run uses, whatever else the machine does
    wall = time.perf_counter()
    result = simulate(the_desk, workload, seed=seed)
    cpu_s = time.process_time() - started
    wall_s = time.perf_counter() - wall
    summary = report(result)["total"]
    return {
        "simulation_conversations": len(workload.arrivals),
        "simulation_agents": sum(g.count for g in the_desk.agents),
        "simulation_events": result.events,
        "simulation_cpu_s": round(cpu_s, 2),
        "simulation_wall_s": round(wall_s, 2),
        "simulation_sla_attainment": summary["sla_attainment"],
        "simulation_occupancy": summary["occupancy"],
        "simulation_abandonment_rate": summary["abandonment_rate"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--no-record", action="store_true", help="print only; leave results/latest.json alone")
    args = parser.parse_args()
    measured_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    figures = run(args.conversations, args.agents)
    if not args.no_record:
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        results.update(figures)
        results["machine"] = machine()
        results["simulation_measured_at"] = measured_at
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    verdict = "met" if figures["simulation_cpu_s"] < TARGET_S else "MISSED"
    print(f"(target: simulation_cpu_s < {TARGET_S:g}: {verdict})" + ("" if args.no_record else f" -> {RESULTS}"))


if __name__ == "__main__":
    main()
