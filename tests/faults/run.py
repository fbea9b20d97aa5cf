"""`make faults`: the fault suite on the real servers; prints each fault, what was checked and the counts, and
writes tests/faults/results/latest.json. Exits 1 if any count that must be zero is not."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

from tests.faults.harness import run, say
from tests.support.servers import ensure_servers

MUST_BE_ZERO = ("lost", "duplicated", "double_assigned", "capacity_violations", "replies_delivered_twice")
RESULTS = Path(__file__).parent / "results" / "latest.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=600.0, help="messages per second offered")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    database_url, kafka_bootstrap = ensure_servers()
    with tempfile.TemporaryDirectory(prefix="faults-") as work:
        result = asyncio.run(run(database_url, kafka_bootstrap, args.messages, Path(work), rate=args.rate))
    for name in MUST_BE_ZERO:
        say(f"checked {name}: {result[name]}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    say(f"results in {args.out}")
    return 1 if any(result[name] for name in MUST_BE_ZERO) else 0


if __name__ == "__main__":
    sys.exit(main())
