"""`make soak`: an hour of traffic at about half of what the fault harness reaches on this machine, with a fault
every few minutes (every kind in turn, the fault suite's own), while the routers', the connectors' and the Kafka
broker's memory and open files are sampled every 10 s. Writes tests/faults/results/soak.json: the fault suite's
counts (each must be 0) and each process's growth (``tests/faults/resources.py``: the slope per hour over its
longest life, and what that adds as a share of its mean). Exits 1 if a count is not 0 or a process grew by more
than ``--growth-limit``.

    python -m tests.faults.soak [--minutes 60] [--rate 50] [--fault-every-s 240] [--customers 500]

The customers are a fixed population (``--customers``): each message comes from one of them, so at most that
many conversations wait for the desk at once. With a population growing with the run, as in `make faults`,
every message of the hour finds its customer's last conversation resolved and opens another; the fault
suite's desk of six agents resolves a few conversations a second on these two cores, so the waiting queue,
held in the owner's routing engine, grows all hour, and the owner's memory with it: a backlog, not a leak."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from tests.faults.harness import KINDS, run, say
from tests.faults.resources import ResourceSampler, grew
from tests.faults.run import failures, report
from tests.support.servers import ensure_servers

RESULTS = Path(__file__).parent / "results" / "soak.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument(
        "--rate", type=float, default=50.0, help="messages per second offered (about half of the harness's limit here)"
    )
    parser.add_argument("--fault-every-s", type=float, default=240.0, help="about how often a fault starts")
    parser.add_argument("--every-s", type=float, default=10.0, help="how often memory and open files are sampled")
    parser.add_argument("--growth-limit", type=float, default=0.10, help="growth over a life, as a share of the mean")
    parser.add_argument(
        "--customers",
        type=int,
        default=500,
        help="customers writing: bounds the conversations that can wait at once, so a desk slower than the "
        "customers leaves a bounded backlog, not one that grows (and with it the owner's memory) all hour",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    messages = int(args.rate * args.minutes * 60)
    rounds = max(1, round(args.minutes * 60 / args.fault_every_s / len(KINDS)))
    database_url, kafka_bootstrap = ensure_servers()
    sampler = ResourceSampler(every_s=args.every_s)
    with tempfile.TemporaryDirectory(prefix="soak-") as work:
        result = asyncio.run(
            run(
                database_url, kafka_bootstrap, messages, Path(work), rate=args.rate, rounds=rounds, sampler=sampler,
                reply_burst=500, people=args.customers,
            )
        )  # fmt: skip
    growth = sampler.growth()
    over = grew(growth, args.growth_limit)
    result["resources"] = {
        "every_s": args.every_s,
        "growth_limit": args.growth_limit,
        "grew": over,
        **growth,
        "samples": [asdict(s) for s in sampler.samples],  # every reading, to see the curve behind a slope
    }
    report(result)
    for name, figures in growth.items():
        say(
            f"{name}: {figures['rss_mib_mean']} MiB ({figures['rss_mib_per_hour']:+} MiB/h, "
            f"{figures['rss_mib_growth']:+.1%} over {figures['span_s']} s), {figures['fds_mean']} open files "
            f"({figures['fds_per_hour']:+}/h, {figures['fds_growth']:+.1%}); {figures['incarnations']} incarnation(s)"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    say(f"results in {args.out}" + (f"; grew: {over}" if over else ""))
    return 1 if failures(result) or over else 0


if __name__ == "__main__":
    sys.exit(main())
