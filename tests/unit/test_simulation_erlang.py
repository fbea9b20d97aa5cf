"""The simulator, driving the production routing engine, reproduces queueing theory.
One queue, Poisson arrivals, exponential handle times, N agents taking one conversation at a time, nobody
abandoning: the share of conversations that wait and the share answered within T match Erlang C within 2
percentage points at 70%, 85% and 95% occupancy.

The expected values are computed here from the textbook formula (explicit sums), not from the simulator's
own ``erlang.py``. They are evaluated at the load the run was actually offered (arrivals counted, handle
times averaged), after checking that load is the one intended: near full occupancy Erlang C is so steep
that the sampling noise of the inputs alone would swamp the comparison, while a fault in how the traffic is
drawn still fails the first check. T/handle time is 20 s / 5 min (the classic "80/20"), scaled ten times
faster so that 40 simulated hours stay a few seconds of CPU.
"""

from __future__ import annotations

import math
import statistics

import pytest

from services.router.simulation.desk import desk_of
from services.router.simulation.simulator import simulate
from services.router.simulation.traffic import traffic_of

AGENTS = 20
HANDLE_S = 30.0
WITHIN_S = 2.0
HOURS = 40
WARMUP_S = 600.0  # the run starts empty: the first minutes are not the steady state Erlang C describes
SEED = 11


def erlang_c(agents: int, load: float) -> float:
    """P(wait) = [A^N/N! · N/(N-A)] / [Σ_{k<N} A^k/k! + A^N/N! · N/(N-A)]."""
    top = load**agents / math.factorial(agents) * agents / (agents - load)
    return top / (sum(load**k / math.factorial(k) for k in range(agents)) + top)


def service_level(agents: int, load: float, handle_s: float, within_s: float) -> float:
    """P(wait <= T) = 1 - P(wait) · exp(-(N - A) · T / handle time)."""
    return 1 - erlang_c(agents, load) * math.exp(-(agents - load) * within_s / handle_s)


def test_the_reference_formula_is_the_textbook_one() -> None:
    # M/M/2 at 1 erlang: P(wait) = 1/3 (A^2/2 · 2/(2-1) = 1 over 1 + 1 + 1)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = utilisation


@pytest.mark.parametrize("occupancy", [0.70, 0.85, 0.95])
def test_waiting_and_service_level_match_erlang_c(occupancy: float) -> None:
    load = occupancy * AGENTS
    desk = desk_of(
        {
            "queues": [{"id": "q", "name": "Q", "is_default": True}],
            "agents": [{"id": "a", "name": "A", "count": AGENTS, "queue_ids": ["q"], "capacity": {"default": 1}}],
        }
    )
    handle_times = {"distribution": "exponential", "mean_s": HANDLE_S}
    traffic = {
        "hours": HOURS,
        "streams": [{"channel": "chat", "rate_per_hour": load / HANDLE_S * 3600, "handle": handle_times}],
    }
    workload = traffic_of(traffic, seed=SEED)
    rate = len(workload.arrivals) / (HOURS * 3600)
    handle = statistics.fmean(a.handle_s for a in workload.arrivals)
    assert rate * HANDLE_S == pytest.approx(load, rel=0.02), "arrivals as intended"
    assert handle == pytest.approx(HANDLE_S, rel=0.02), "handle times as intended"

    run = simulate(desk, workload, seed=SEED)
    measured = [c for c in run.recorded.conversations.values() if c.arrival.at >= workload.window.start + WARMUP_S]
    assert all(c.answered_at is not None for c in measured), "nobody abandons; the drain answers everyone"
    waits = [c.answered_at - c.arrival.at for c in measured if c.answered_at is not None]
    offered = rate * handle
    waited = sum(w > 0 for w in waits) / len(waits)
    within = sum(w <= WITHIN_S for w in waits) / len(waits)
    assert abs(waited - erlang_c(AGENTS, offered)) < 0.02, (waited, erlang_c(AGENTS, offered))
    assert abs(within - service_level(AGENTS, offered, handle, WITHIN_S)) < 0.02, (
        within,
        service_level(AGENTS, offered, handle, WITHIN_S),
    )
    busy = sum(sum(hours) for hours in run.recorded.busy.values()) / (AGENTS * HOURS * 3600)
    assert busy == pytest.approx(offered / AGENTS, abs=0.02), "occupancy is the offered load per agent"


def erlang_c_in_logs(agents: int, load: float) -> float:
    """The same formula in logarithms (lgamma), for desks whose A^N/N! overflows a float."""
    logs = [k * math.log(load) - math.lgamma(k + 1) for k in range(agents)]
    top = agents * math.log(load) - math.lgamma(agents + 1) + math.log(agents / (agents - load))
    peak = max([*logs, top])
    return math.exp(top - peak) / (sum(math.exp(x - peak) for x in logs) + math.exp(top - peak))


@pytest.mark.parametrize(
    ("agents", "load"), [(1, 0.5), (2, 1.0), (20, 19.0), (150, 140.0), (500, 480.0), (2000, 1990.0)]
)
def test_the_staffing_search_uses_erlang_c_that_holds_for_large_desks(agents: int, load: float) -> None:
    from services.router.simulation import erlang

    assert erlang.erlang_c(agents, load) == pytest.approx(erlang_c_in_logs(agents, load), rel=1e-9)
    assert erlang.service_level(agents, load, 300, 20) == pytest.approx(
        1 - erlang_c_in_logs(agents, load) * math.exp(-(agents - load) * 20 / 300), rel=1e-9
    )
    needed = erlang.agents_needed(load, 300, 20, 0.8)
    assert erlang.service_level(needed, load, 300, 20) >= 0.8 > erlang.service_level(needed - 1, load, 300, 20)
