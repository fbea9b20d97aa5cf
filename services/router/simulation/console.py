"""Results in the terminal: a table per scope (total, queues, channels; hours on request), the baseline and
the proposal one above the other with the change, and the day at a glance as a one-line chart per run."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

Report = Mapping[str, Any]
BLOCKS = "▁▂▃▄▅▆▇█"
COLUMNS: Sequence[tuple[str, str, Callable[[Any], str]]] = (
    ("arrived", "arrived", lambda v: f"{v:,}"),
    ("sla_attainment", "SLA", lambda v: f"{v:.1%}"),
    ("wait_p50_s", "p50", lambda v: f"{v:,.0f}s"),
    ("wait_p90_s", "p90", lambda v: f"{v:,.0f}s"),
    ("wait_p99_s", "p99", lambda v: f"{v:,.0f}s"),
    ("abandonment_rate", "abandoned", lambda v: f"{v:.1%}"),
    ("longest_queue", "longest", lambda v: f"{v:,}"),
    ("occupancy", "occupancy", lambda v: f"{v:.1%}"),
)
PERCENT = {"sla_attainment", "abandonment_rate", "occupancy"}


def _cell(key: str, value: Any, fmt: Callable[[Any], str]) -> str:
    return "-" if value is None else fmt(value)


def _change(key: str, a: Any, b: Any, fmt: Callable[[Any], str]) -> str:
    if a is None or b is None:
        return ""
    if key in PERCENT:
        return f"{(b - a) * 100:+.1f}pp"
    return f"{b - a:+,.0f}" + ("s" if key.startswith("wait") else "")


def _pick(section: str, key: str | int) -> Callable[[Report], Mapping[str, Any]]:
    def pick(report: Report) -> Mapping[str, Any]:
        values = report[section]
        if isinstance(values, list):
            return values[key] if isinstance(key, int) and key < len(values) else {}
        return values.get(key, {})  # type: ignore[no-any-return]

    return pick


def table(reports: Mapping[str, Report], *, hours: bool = False) -> str:
    """One block per scope; one line per run, then the change if there are two runs."""
    names = list(reports)
    first = reports[names[0]]
    scopes: list[tuple[str, Callable[[Report], Mapping[str, Any]]]] = [("total", lambda r: r["total"])]
    scopes += [(f"queue {q}", _pick("queues", q)) for q in first["queues"]]
    scopes += [(f"channel {c}", _pick("channels", c)) for c in first["channels"]]
    if hours:
        scopes += [(h["at"][11:16], _pick("hours", h["hour"])) for h in first["hours"]]
    header = ["", "run", *(title for _, title, _ in COLUMNS)]
    rows: list[list[str]] = []
    for scope, pick in scopes:
        picked = [pick(reports[name]) for name in names]
        for n, (name, values) in enumerate(zip(names, picked, strict=True)):
            rows.append([scope if n == 0 else "", name, *(_cell(k, values.get(k), f) for k, _, f in COLUMNS)])
        if len(names) == 2:
            a, b = picked
            rows.append(["", "change", *(_change(k, a.get(k), b.get(k), f) for k, _, f in COLUMNS)])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(_line(row, widths) for row in [header, *rows])


def _line(row: Sequence[str], widths: Sequence[int]) -> str:
    """The scope and run names to the left, figures to the right."""
    cells = (cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
    return "  ".join(cells).rstrip()


def chart(reports: Mapping[str, Report], key: str = "sla_attainment", title: str = "SLA by hour") -> str:
    """One character per hour, from ▁ (0) to █ (100%), · for an hour nothing arrived in: the shape of the day."""
    width = max(len(name) for name in reports)
    lines = [f"{title} (each character an hour, ▁ low, █ 100%)"]
    for name, report in reports.items():
        marks = "".join(
            "·" if h[key] is None else BLOCKS[min(len(BLOCKS) - 1, round(h[key] * (len(BLOCKS) - 1)))]
            for h in report["hours"]
        )
        lines.append(f"  {name:<{width}}  {marks}")
    return "\n".join(lines)


def staffing_table(result: Mapping[str, Any]) -> str:
    lines = [
        f"Fewest agents per hour for {result['level']:.0%} answered within {result['within_s']:g} s "
        f"({result['group']}, {result['runs']} runs)",
        f"  {'hour':<6} {'arrivals':>8} {'erlangs':>8} {'simulated':>9} {'level':>7} {'Erlang C':>8} {'level':>7}",
    ]
    for h in result["hours"]:
        level = "-" if h["service_level_simulated"] is None else f"{h['service_level_simulated']:.1%}"
        erlang = "-" if h["service_level_erlang_c"] is None else f"{h['service_level_erlang_c']:.1%}"
        lines.append(
            f"  {h['at'][11:16]:<6} {h['arrivals']:>8,} {h['load_erlangs']:>8.2f} {h['agents_simulated']:>9} "
            f"{level:>7} {h['agents_erlang_c']:>8} {erlang:>7}"
        )
    total = result["agent_hours"]
    lines.append(f"  agent-hours: {total['simulated']} by simulation, {total['erlang_c']} by Erlang C")
    return "\n".join(lines)
