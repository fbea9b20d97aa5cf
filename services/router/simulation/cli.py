"""``switchboard simulate``: run a desk configuration (and a proposal beside it) on synthetic traffic or a
trace, print the results, write them as JSON and PNG files, and optionally search the staffing per hour.

    switchboard simulate --desk desk.json --proposal proposal.json --traffic traffic.json --out sim/
    switchboard simulate --desk desk.json --trace week.jsonl --handle lognormal:420:300 --staff 0.8 --within-s 20

Exit status: 0 done, 2 the inputs cannot be used (each problem is named)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from services.router.domain.errors import InvalidCommand
from services.router.simulation import console, plots
from services.router.simulation.comparison import compare
from services.router.simulation.desk import Desk, DeskError, load_desk
from services.router.simulation.distributions import Distribution, distribution
from services.router.simulation.progress import ProgressBar
from services.router.simulation.report import report
from services.router.simulation.simulator import ROUTER_TICK_S, simulate
from services.router.simulation.staffing import StaffingError, search
from services.router.simulation.trace import TraceError, read_trace
from services.router.simulation.traffic import traffic_of
from services.router.simulation.workload import HOUR, Workload, parse_time
from shared.command_line import documented_subcommand


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """The ``simulate`` subcommand on the ``switchboard`` parser's subparsers."""
    summary = "what if: run a routing configuration on synthetic traffic or a trace (docs/simulation.md)"
    p = documented_subcommand(subparsers, "simulate", summary, __doc__)
    p.add_argument("--desk", type=Path, required=True, help="the desk as configured now: queues, agents (JSON)")
    p.add_argument("--proposal", type=Path, help="a proposed desk, run on the same traffic and compared")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--traffic", type=Path, help="synthetic traffic: Poisson streams per hour (JSON)")
    source.add_argument("--trace", type=Path, help="arrivals and presence changes, one JSON object a line")
    p.add_argument("--start", help="the window's start, ISO 8601 (default: the traffic's, or the trace's first hour)")
    p.add_argument("--hours", type=int, help="the window's length in hours (default: the traffic's, or the trace's)")
    p.add_argument("--drain-h", type=float, default=2.0, help="hours run after the window, without arrivals")
    p.add_argument("--handle", help="trace lines without handle_s: MEAN_S, exponential:MEAN_S or lognormal:MEAN_S:SD_S")
    p.add_argument("--patience", help="trace lines without patience_s abandon after this (same form); default never")
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same results)")
    p.add_argument("--tick-s", type=float, default=ROUTER_TICK_S, help="the routing timers' period, as the router's")
    p.add_argument("--out", type=Path, default=Path("simulation"), help="where report.json and the PNGs go")
    p.add_argument("--no-plots", action="store_true", help="JSON and console only")
    p.add_argument("--by-hour", action="store_true", help="print every hour's figures too")
    p.add_argument("--staff", type=float, metavar="LEVEL", help="search the fewest agents per hour for this level")
    p.add_argument("--within-s", type=float, default=20.0, help="with --staff: answered within this many seconds")
    p.add_argument("--group", help="with --staff: the agents line to size (default: the first)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (DeskError, TraceError, ValueError, InvalidCommand, StaffingError, OSError) as exc:
        print(f"switchboard simulate: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    desks: dict[str, Desk] = {"baseline": load_desk(args.desk)}
    if args.proposal is not None:
        desks["proposal"] = load_desk(args.proposal)
    workload = _workload(args)
    workload = Workload(replace(workload.window, drain_s=args.drain_h * HOUR), workload.arrivals, workload.presence)
    show = not args.quiet and sys.stderr.isatty()
    reports: dict[str, dict[str, Any]] = {}
    for name, desk in desks.items():
        bar = ProgressBar(f"simulating {name}", enabled=show)
        reports[name] = report(simulate(desk, workload, seed=args.seed, tick_s=args.tick_s, progress=bar))
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = dict(reports)
    if len(reports) == 2:
        results["comparison"] = compare(reports["baseline"], reports["proposal"])
    start = reports["baseline"]["window"]["start"]
    print(f"{len(workload.arrivals):,} conversations over {workload.window.hours} h from {start}")
    print(console.table(reports, hours=args.by_hour))
    print()
    print(console.chart(reports))
    written = [_write(args.out / "report.json", results)]
    if args.staff is not None:
        if not 0 < args.staff < 1:
            raise ValueError("--staff: a level between 0 and 1, e.g. 0.8")
        sized = "proposal" if "proposal" in desks else "baseline"
        bar = ProgressBar(f"staffing {sized}", enabled=show)
        staffing = search(
            desks[sized],
            workload,
            level=args.staff,
            within_s=args.within_s,
            group_id=args.group,
            seed=args.seed,
            tick_s=args.tick_s,
            on_run=lambda n: bar(min(0.99, n / 100)),  # an estimate: about 5 runs per busy hour
        ).as_json()
        bar(1.0)
        print()
        print(console.staffing_table(staffing))
        written.append(_write(args.out / "staffing.json", staffing))
    if not args.no_plots:
        written += _plots(reports, staffing if args.staff is not None else None, args.out)
    print()
    print("written: " + ", ".join(str(p) for p in written))
    return 0


def _workload(args: argparse.Namespace) -> Workload:
    start = parse_time(args.start, "--start") if args.start else None
    if args.traffic is not None:
        try:
            raw = json.loads(args.traffic.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{args.traffic}: not JSON ({exc.msg} at line {exc.lineno})") from None
        try:
            return traffic_of(raw, start=start, hours=args.hours, seed=args.seed)
        except ValueError as exc:
            raise ValueError(f"{args.traffic}: {exc}") from None
    with args.trace.open() as lines:
        return read_trace(
            lines,
            name=str(args.trace),
            start=start,
            hours=args.hours,
            handle=_distribution(args.handle, "--handle"),
            patience=_distribution(args.patience, "--patience"),
            seed=args.seed,
        )


def _distribution(text: str | None, where: str) -> Distribution | None:
    """``300``, ``exponential:300``, ``lognormal:420:300`` or ``fixed:60``."""
    if text is None:
        return None
    parts = text.split(":")
    try:
        if len(parts) == 1:
            return distribution(float(parts[0]), where)
        numbers = [float(p) for p in parts[1:]]
    except ValueError:
        raise ValueError(f"{where}: MEAN_S, exponential:MEAN_S, lognormal:MEAN_S:SD_S or fixed:S") from None
    raw: dict[str, Any] = {"distribution": parts[0], "mean_s": numbers[0] if numbers else None}
    if len(numbers) > 1:
        raw["sd_s"] = numbers[1]
    return distribution(raw, where)


def _write(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value, indent=2) + "\n")
    return path


def _plots(reports: dict[str, Any], staffing: dict[str, Any] | None, out: Path) -> list[Path]:
    try:
        written = [plots.day(reports, out / "day.png"), plots.occupancy(reports, out / "occupancy.png")]
        if staffing is not None:
            written.append(plots.staffing(staffing, out / "staffing.png"))
    except ImportError:
        print("(no plots: matplotlib is not installed; pip install matplotlib)", file=sys.stderr)
        return []
    return written
