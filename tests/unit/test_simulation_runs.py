"""The simulator's mechanics, one behaviour per test, on small traces whose outcome can be worked out by hand:
offers answered after the reaction time, shifts that end without handing work back, patience, SLA escalation
and widening steps driven on the router's timer tick, what the report counts; then the staffing search and the
``switchboard simulate`` command."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from services.router.simulation import cli
from services.router.simulation.desk import desk_of
from services.router.simulation.report import report
from services.router.simulation.simulator import Run, simulate
from services.router.simulation.staffing import search, service_levels
from services.router.simulation.trace import read_trace
from services.router.simulation.traffic import traffic_of
from services.router.simulation.workload import Workload
from tests.support.simulation import simulate_args

START = 1_767_571_200.0  # Monday 2026-01-05 00:00 UTC
H = 3600.0


def one_queue(routing: dict[str, Any] | None = None, **agent: Any) -> dict[str, Any]:
    return {
        "queues": [{"id": "care", "name": "Care", "is_default": True, "routing": routing or {}}],
        "agents": [{"id": "ada", "name": "Ada", "queue_ids": ["care"], "capacity": {"default": 1}, **agent}],
    }


def trace(*arrivals: dict[str, Any], hours: int = 4) -> Workload:
    return read_trace([json.dumps({"channel": "chat", **a}) for a in arrivals], start=START, hours=hours)


def run(desk: dict[str, Any], workload: Workload) -> Run:
    return simulate(desk_of(desk), workload, seed=1)


def test_an_offer_is_answered_after_the_agents_reaction_time() -> None:
    desk = one_queue({"offer_timeout_s": 30}) | {"behaviour": {"accept_after_s": 5}}
    result = run(desk, trace({"at": 10, "id": "c", "handle_s": 100}))
    c = result.recorded.conversations["c"]
    assert c.wait_s == 5.0
    assert c.resolved_at == START + 10 + 5 + 100, "the handle time runs from the acceptance"


def test_a_shift_end_lets_the_agent_finish_and_new_work_waits_for_the_next_shift() -> None:
    desk = one_queue(shifts=["08:00-09:00", "10:00-11:00"])
    result = run(
        desk,
        trace({"at": 8.8 * H, "id": "kept", "handle_s": 1200}, {"at": 9.1 * H, "id": "next", "handle_s": 60}, hours=12),
    )
    kept, following = result.recorded.conversations["kept"], result.recorded.conversations["next"]
    assert kept.resolved_at == START + 8.8 * H + 1200, "finished after the shift ended, not handed back"
    assert following.answered_at == START + 10 * H, "no one is online between shifts"


def test_a_customer_who_waits_longer_than_their_patience_abandons() -> None:
    result = run(one_queue(shifts=["08:00-09:00"]), trace({"at": 60, "id": "c", "handle_s": 60, "patience_s": 90}))
    c = result.recorded.conversations["c"]
    assert (c.abandoned_at, c.answered_at) == (START + 150, None)
    total = report(result)["total"]
    assert (total["abandonment_rate"], total["sla_attainment"]) == (1.0, 0.0)


def test_an_sla_breach_moves_waiting_work_to_the_queue_its_sla_names() -> None:
    desk = {
        "queues": [
            {"id": "first", "name": "First", "is_default": True,
             "routing": {"sla": {"first_response_s": {"chat": 60}, "on_breach": {"escalate_to": "second"}}}},
            {"id": "second", "name": "Second", "channels": ["voice"]},
        ],
        "agents": [{"id": "ada", "name": "Ada", "queue_ids": ["second"], "capacity": {"default": 1}}],
    }  # fmt: skip
    c = run(desk, trace({"at": 5, "id": "c", "handle_s": 60})).recorded.conversations["c"]
    assert (c.wait_s, c.escalations, c.queue_id) == (60.0, 1, "first"), "counted in the queue it arrived in"


def test_widening_steps_fire_on_the_routers_timer_tick() -> None:
    desk = one_queue({"steps": [{"after_s": 0, "agents": ["ada"]}, {"after_s": 30.5}]})
    desk["agents"].append({"id": "bob", "name": "Bob", "queue_ids": ["care"], "capacity": {"default": 1}})
    result = run(desk, trace({"at": 10, "id": "ada's", "handle_s": 600}, {"at": 20, "id": "c", "handle_s": 60}))
    c = result.recorded.conversations["c"]
    assert c.agent_id == "bob"
    assert c.wait_s == 31.0, "due at 30.5 s, acted on at the next tick of the 1 s timer loop"


def test_the_report_counts_waits_lines_and_occupancy_by_queue_channel_and_hour() -> None:
    chats = [{"at": 0, "id": f"c{n}", "handle_s": 600} for n in range(3)]
    workload = trace(*chats, {"at": H + 5, "channel": "email", "handle_s": 60}, hours=2)
    result = report(run(one_queue({"sla": {"first_response_s": {"chat": 900}}}), workload))
    chat = next(r for r in result["rows"] if r["channel"] == "chat")
    assert (chat["queue"], chat["hour"], chat["arrived"]) == ("care", 0, 3)
    assert (chat["wait_p50_s"], chat["wait_p90_s"], chat["wait_mean_s"]) == (600.0, 1200.0, 600.0)
    assert chat["sla_attainment"] == round(2 / 3, 4), "the third waited 1200 s for a 900 s promise"
    assert chat["longest_queue"] == 2
    assert result["hours"][0]["occupancy"] == 0.5, "three chats of 10 minutes, one after the other"
    assert result["hours"][1]["occupancy"] == pytest.approx(60 / 3600, abs=1e-4)
    assert result["channels"]["email"]["wait_p50_s"] == 0.0
    assert result["agents"]["ada"]["at_work_h"] == 2.0


# -- staffing ----------------------------------------------------------------------------------------------------
def agents_for(load: float, handle_s: float, within_s: float, level: float) -> int:
    """Erlang C's answer from the textbook sums (independent of the module under test)."""

    def waits(n: int) -> float:
        top = load**n / math.factorial(n) * n / (n - load)
        return top / (sum(load**k / math.factorial(k) for k in range(n)) + top)

    n = math.floor(load) + 1
    while 1 - waits(n) * math.exp(-(n - load) * within_s / handle_s) < level:
        n += 1
    return n


def test_the_staffing_search_finds_the_fewest_agents_per_hour_that_meet_the_level() -> None:
    desk = desk_of(one_queue())
    streams = [{"channel": "chat", "per_hour": [40, 160, 80], "handle": {"mean_s": 90}}]
    workload = traffic_of({"hours": 3, "streams": streams}, seed=2)
    staffing = search(desk, workload, level=0.8, within_s=20, seed=2)

    counts = [h["agents_simulated"] for h in staffing.hours]
    assert all(h["service_level_simulated"] >= 0.8 for h in staffing.hours)
    for hour, count in enumerate(counts):  # one fewer in any hour falls short somewhere
        fewer = [*counts[:hour], count - 1, *counts[hour + 1 :]]
        group = desk.agents[0]
        staffed = desk.with_group(type(group)(group.id, max(fewer), group.spec, per_hour=tuple(fewer)))
        assert min(x for x in service_levels(simulate(staffed, workload, seed=2), 20) if x is not None) < 0.8
    for hour, row in enumerate(staffing.hours):
        handles = [a.handle_s for a in workload.arrivals if workload.window.hour_of(a.at) == hour]
        load, mean = sum(handles) / 3600, sum(handles) / len(handles)
        assert row["agents_erlang_c"] == agents_for(load, mean, 20, 0.8)


# -- the command -------------------------------------------------------------------------------------------------
def test_the_command_compares_a_proposal_and_writes_json_and_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    desk = one_queue(count=2)
    proposal = one_queue(count=3)
    traffic = {"hours": 3, "streams": [{"channel": "chat", "rate_per_hour": 60, "handle": {"mean_s": 100}}]}
    for name, value in (("desk", desk), ("proposal", proposal), ("traffic", traffic)):
        (tmp_path / f"{name}.json").write_text(json.dumps(value))
    out = tmp_path / "out"
    files = ["--desk", str(tmp_path / "desk.json"), "--proposal", str(tmp_path / "proposal.json")]
    args = simulate_args(
        *files, "--traffic", str(tmp_path / "traffic.json"), "--out", str(out), "--staff", "0.8", "--quiet"
    )

    assert cli.run(args) == 0

    printed = capsys.readouterr().out
    assert "baseline" in printed and "proposal" in printed and "change" in printed
    assert "Fewest agents per hour for 80% answered within 20 s" in printed
    results = json.loads((out / "report.json").read_text())
    assert set(results) == {"baseline", "proposal", "comparison"}
    assert results["comparison"]["total"]["arrived"]["difference"] == 0
    assert json.loads((out / "staffing.json").read_text())["level"] == 0.8
    for png in ("day.png", "occupancy.png", "staffing.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_command_names_the_bad_line_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "desk.json").write_text(json.dumps(one_queue()))
    (tmp_path / "week.jsonl").write_text('{"at": 0, "channel": "chat", "handle_s": 60}\n{"at": 1, "handle_s": 60}\n')
    args = simulate_args("--desk", str(tmp_path / "desk.json"), "--trace", str(tmp_path / "week.jsonl"), "--no-plots")

    assert cli.run(args) == 2

    assert f"{tmp_path / 'week.jsonl'}:2: channel: required" in capsys.readouterr().err


def test_an_agent_in_the_traces_presence_lines_follows_the_trace_not_their_shifts() -> None:
    workload = read_trace(
        [
            json.dumps({"at": 60, "channel": "chat", "id": "c", "handle_s": 60}),
            json.dumps({"at": 600, "type": "presence", "agent_id": "ada", "presence": "online"}),
        ],
        start=START,
        hours=2,
    )
    c = run(one_queue(shifts=["00:00-24:00"]), workload).recorded.conversations["c"]
    assert c.answered_at == START + 600, "offline until the trace says online, whatever the shift"
