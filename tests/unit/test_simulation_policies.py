"""A routing change moves the results the way it must. Each test runs a baseline and a
proposal on the very same customers (same arrivals, handle times and patience) through the production engine,
and checks the direction, by a margin well beyond the run-to-run noise."""

from __future__ import annotations

import copy
from typing import Any

from services.router.simulation.desk import desk_of
from services.router.simulation.report import report
from services.router.simulation.simulator import simulate
from services.router.simulation.traffic import traffic_of
from services.router.simulation.workload import Workload

SEED = 5


def results(desk: dict[str, Any], workload: Workload) -> dict[str, Any]:
    return report(simulate(desk_of(desk), workload, seed=SEED))


def chat(per_hour: list[float], handle_s: float = 300.0, **attrs: Any) -> dict[str, Any]:
    return {"channel": "chat", "per_hour": per_hour, "handle": {"mean_s": handle_s}, **attrs}


def test_adding_an_agent_lowers_waits() -> None:
    baseline = {
        "queues": [{"id": "care", "name": "Care", "is_default": True}],
        "agents": [{"id": "a", "name": "Care", "count": 5, "queue_ids": ["care"], "capacity": {"default": 1}}],
    }
    proposal = copy.deepcopy(baseline)
    proposal["agents"][0]["count"] = 6
    workload = traffic_of({"hours": 8, "streams": [chat([52.0])]}, seed=SEED)  # 4.3 erlangs

    before, after = results(baseline, workload)["total"], results(proposal, workload)["total"]

    assert after["wait_mean_s"] < before["wait_mean_s"] / 2
    assert after["wait_p90_s"] < before["wait_p90_s"]
    assert after["longest_queue"] < before["longest_queue"]
    assert after["occupancy"] < before["occupancy"], "the same work over more agents"


def test_widening_to_a_second_queue_after_60_s_raises_the_first_queues_sla_attainment() -> None:
    baseline = {
        "queues": [
            {
                "id": "billing",
                "name": "Billing",
                "routing": {"rule": {"attr": "tags", "has": "billing"}, "sla": {"first_response_s": {"chat": 120}}},
            },
            {"id": "care", "name": "Care", "is_default": True},
        ],
        "agents": [
            {"id": "billing", "name": "Billing", "count": 2, "queue_ids": ["billing"], "capacity": {"default": 1}},
            {"id": "care", "name": "Care", "count": 6, "queue_ids": ["care"], "capacity": {"default": 1}},
        ],
    }
    proposal = copy.deepcopy(baseline)
    proposal["queues"][0]["routing"] |= {"overflow_after_s": 60, "overflow_to": "care"}
    streams = [chat([22.0], tags=["billing"]), chat([30.0])]  # billing 1.8 erlangs on 2 agents; care 2.5 on 6
    workload = traffic_of({"hours": 8, "streams": streams}, seed=SEED)

    before, after = results(baseline, workload), results(proposal, workload)

    assert after["queues"]["billing"]["sla_attainment"] > before["queues"]["billing"]["sla_attainment"] + 0.15
    assert after["queues"]["billing"]["arrived"] == before["queues"]["billing"]["arrived"], "counted where it arrived"
    assert after["queues"]["billing"]["wait_p90_s"] < before["queues"]["billing"]["wait_p90_s"]


def test_putting_gold_first_shortens_gold_waits() -> None:
    # A morning rush the desk cannot keep up with: waits grow far beyond gold's 5-minute head start under
    # arrival order. The proposal serves by first-response deadline with a 2-hour chat promise, which puts gold
    # (promised in half the time) an hour ahead of everyone else.
    baseline = {
        "queues": [{"id": "care", "name": "Care", "is_default": True}],
        "agents": [{"id": "a", "name": "Care", "count": 5, "queue_ids": ["care"], "capacity": {"default": 1}}],
    }
    proposal = copy.deepcopy(baseline)
    proposal["queues"][0]["routing"] = {"priority": "deadline", "sla": {"first_response_s": {"chat": 7200}}}
    rush = [60.0, 60.0, 60.0, 30.0, 30.0, 30.0]  # 5 erlangs of standard work on 5 agents, then 2.5
    gold = [15.0, 15.0, 15.0, 8.0, 8.0, 8.0]
    workload = traffic_of({"hours": 6, "streams": [chat(rush), chat(gold, tier="gold")]}, seed=SEED)

    def gold_waits(desk: dict[str, Any]) -> list[float]:
        run = simulate(desk_of(desk), workload, seed=SEED)
        return sorted(
            c.answered_at - c.arrival.at
            for c in run.recorded.conversations.values()
            if c.arrival.tier == "gold" and c.answered_at is not None
        )

    before, after = gold_waits(baseline), gold_waits(proposal)

    assert len(before) == len(after)
    assert sum(after) / len(after) < sum(before) / len(before) / 2
    assert after[int(0.9 * len(after))] < before[int(0.9 * len(before))]
