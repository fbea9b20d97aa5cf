"""A simulation asked for as one JSON body (services/router/simulation/runs.py) and this replica's runs
(entrypoints/http/simulations.py): what is refused before a run starts, what a run returns, how many runs wait
and how many results are kept."""

from __future__ import annotations

from concurrent.futures import Executor, Future
from datetime import UTC, datetime
from typing import Any

import pytest

from services.router.entrypoints.http import simulations
from services.router.simulation import runs

DESK = {
    "queues": [{"id": "care", "name": "Care", "is_default": True}],
    "agents": [{"id": "a", "name": "A", "queue_ids": ["care"]}],
}
TRAFFIC = {
    "start": "2026-01-05T08:00:00Z",
    "hours": 1,
    "streams": [{"channel": "chat", "rate_per_hour": 30, "handle": 120}],
}
NOW = datetime(2026, 1, 5, tzinfo=UTC)


def agents(**line: Any) -> dict[str, Any]:
    return {**DESK, "agents": [{"id": "a", "name": "A", "queue_ids": ["care"], **line}]}


def streams(**stream: Any) -> dict[str, Any]:
    return {**TRAFFIC, "streams": [{"channel": "chat", **stream}]}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"desk": DESK}, "either traffic"),
        ({"desk": DESK, "traffic": TRAFFIC, "trace": [{}]}, "either traffic"),
        ({"desk": agents(queue_ids=["x"]), "traffic": TRAFFIC}, "desk: agents[0]"),
        ({"desk": DESK, "proposal": {"queues": "no"}, "traffic": TRAFFIC}, "proposal: "),
        ({"desk": DESK, "traffic": {**TRAFFIC, "hours": 24 * 8}}, "traffic.hours"),
        ({"desk": DESK, "traffic": streams(rate_per_hour=300_000, handle=60)}, "at most 200,000"),
        ({"desk": DESK, "traffic": streams(rate_per_hour=1)}, "traffic: streams[0].handle"),
        ({"desk": agents(count=5000), "traffic": TRAFFIC}, "desk.agents: at most"),
        ({"desk": DESK, "trace": [{}], "handle": {"distribution": "gamma"}}, "handle"),
        ({"desk": DESK, "traffic": TRAFFIC, "colour": "red"}, "unknown field(s) colour"),
    ],
)
def test_what_cannot_run_is_refused_before_it_starts_and_the_field_is_named(body: dict[str, Any], named: str) -> None:
    with pytest.raises(runs.SimulationRefused) as refused:
        runs.check(body)
    assert named in str(refused.value)


def test_a_run_returns_the_report_of_switchboard_simulate() -> None:
    proposal = agents(count=2)
    results = runs.run({"desk": DESK, "proposal": proposal, "traffic": TRAFFIC, "drain_h": 1})
    assert set(results) == {"baseline", "proposal", "comparison"}
    assert results["baseline"]["total"]["arrived"] == results["proposal"]["total"]["arrived"] > 0
    assert results == runs.run({"desk": DESK, "proposal": proposal, "traffic": TRAFFIC, "drain_h": 1}), "seeded"


class HeldWorker(Executor):
    """Runs nothing until told: its futures finish when the test says so."""

    def __init__(self) -> None:
        self.futures: list[Future[Any]] = []

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self.futures.append(future)
        return future


def test_a_replica_queues_a_few_runs_keeps_the_latest_results_and_shows_each_only_to_its_tenant() -> None:
    worker = HeldWorker()
    kept = simulations.Simulations(lambda: worker)
    waiting = [kept.submit("acme", {}, NOW) for _ in range(simulations.WAITING)]
    assert all(run is not None and run.status == "queued" for run in waiting)
    assert kept.submit("acme", {}, NOW) is None, "the worker is busy enough: refused"

    for future in worker.futures:
        future.set_result({"total": {}})
    first = waiting[0]
    assert first is not None and kept.get("acme", first.id) is first and kept.get("other", first.id) is None
    assert first.as_json()["status"] == "done" and first.as_json()["report"] == {"total": {}}
    for _ in range(simulations.KEPT):
        run = kept.submit("acme", {}, NOW)
        assert run is not None
        worker.futures[-1].set_result({})
    assert kept.get("acme", first.id) is None, "the oldest results are forgotten first"


def test_a_run_that_crashed_says_so_without_its_internals() -> None:
    worker = HeldWorker()
    kept = simulations.Simulations(lambda: worker)
    refused, crashed = kept.submit("acme", {}, NOW), kept.submit("acme", {}, NOW)
    assert refused is not None and crashed is not None
    worker.futures[0].set_exception(runs.SimulationRefused("trace:2: channel: required"))
    worker.futures[1].set_exception(MemoryError("at 0x7f…"))
    assert refused.as_json()["error"] == "trace:2: channel: required"
    assert crashed.as_json() == {
        "id": crashed.id,
        "status": "failed",
        "created_at": NOW,
        "error": "the run stopped: MemoryError",
    }
