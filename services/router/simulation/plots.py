"""PNG plots of a run (and its proposal): waits and SLA over the day, occupancy per hour and per agent, and
the staffing search. matplotlib is imported here only, when plots are asked for: the simulator itself never
needs it, and a desk without it still gets its JSON results."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

Report = Mapping[str, Any]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    import matplotlib.pyplot as plt

    return plt


def _series(report: Report, key: str, scale: float = 1.0) -> list[float]:
    return [float("nan") if h[key] is None else h[key] * scale for h in report["hours"]]


def day(reports: Mapping[str, Report], path: Path) -> Path:
    """Wait p50/p90 and SLA attainment per hour, one line per run."""
    plt = _pyplot()
    fig, (waits, sla) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for name, report in reports.items():
        hours = [h["hour"] for h in report["hours"]]
        (line,) = waits.plot(hours, _series(report, "wait_p90_s"), label=f"{name} p90")
        waits.plot(hours, _series(report, "wait_p50_s"), linestyle="--", color=line.get_color(), label=f"{name} p50")
        sla.plot(hours, _series(report, "sla_attainment", 100), color=line.get_color(), label=name)
    waits.set_yscale("symlog", linthresh=10)  # seconds and hours on one axis: a night's backlog hides nothing
    waits.set_ylabel("wait (s)")
    waits.set_title("Waits and SLA attainment by hour of arrival")
    waits.legend(loc="upper left")
    sla.set_ylabel("SLA attainment (%)")
    sla.set_ylim(0, 105)
    sla.set_xlabel(f"hour from {next(iter(reports.values()))['window']['start']}")
    sla.legend(loc="lower left")
    return _save(plt, fig, path)


def occupancy(reports: Mapping[str, Report], path: Path) -> Path:
    """Occupancy per hour, and per agent (agents in order of occupancy, so the spread shows)."""
    plt = _pyplot()
    fig, (by_hour, by_agent) = plt.subplots(2, 1, figsize=(10, 7))
    for name, report in reports.items():
        by_hour.plot([h["hour"] for h in report["hours"]], _series(report, "occupancy", 100), label=name)
        values = sorted(
            (a["occupancy"] * 100 for a in report["agents"].values() if a["occupancy"] is not None), reverse=True
        )
        by_agent.plot(range(1, len(values) + 1), values, marker="." if len(values) < 60 else None, label=name)
    by_hour.set_ylabel("occupancy (%)")
    by_hour.set_xlabel("hour")
    by_hour.set_title("Agents' occupancy")
    by_hour.legend()
    by_agent.set_ylabel("occupancy (%)")
    by_agent.set_xlabel("agents, busiest first")
    by_agent.legend()
    return _save(plt, fig, path)


def staffing(result: Mapping[str, Any], path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 4))
    hours = [h["hour"] for h in result["hours"]]
    ax.step(hours, [h["agents_simulated"] for h in result["hours"]], where="mid", label="by simulation")
    ax.step(hours, [h["agents_erlang_c"] for h in result["hours"]], where="mid", linestyle="--", label="Erlang C")
    ax.set_title(f"Agents needed for {result['level']:.0%} answered within {result['within_s']:g} s")
    ax.set_xlabel("hour")
    ax.set_ylabel("agents")
    ax.legend()
    return _save(plt, fig, path)


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
