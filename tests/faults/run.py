"""`make faults`: the fault suite on the real servers; prints each fault, what was checked and the counts, and
writes tests/faults/results/latest.json (with the commit and whether the tree was clean). Exits 1 if any count
that must be zero is not."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.faults.harness import MUST_BE_ZERO, run, say
from tests.faults.resources import ResourceSampler
from tests.support.servers import ensure_servers

RESULTS = Path(__file__).parent / "results" / "latest.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=100.0, help="messages per second offered")
    parser.add_argument("--rounds", type=int, default=3, help="faults of each kind, spread over the messages")
    parser.add_argument(
        "--reply-burst",
        type=int,
        default=2000,
        help="replies posted around each kill of the connectors, half before it (in flight)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    database_url, kafka_bootstrap = ensure_servers()
    sampler = ResourceSampler()
    with tempfile.TemporaryDirectory(prefix="faults-") as work:
        result = asyncio.run(
            run(
                database_url, kafka_bootstrap, args.messages, Path(work), rate=args.rate, rounds=args.rounds,
                sampler=sampler, reply_burst=args.reply_burst,
            )
        )  # fmt: skip
    result["resources"] = {"every_s": sampler.every_s, **sampler.growth()}  # informational; `make soak` judges
    report(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    say(f"results in {args.out}")
    return 1 if failures(result) else 0


def failures(result: dict[str, Any]) -> dict[str, Any]:
    return {name: result[name] for name in MUST_BE_ZERO if result[name]}


def report(result: dict[str, Any]) -> None:
    for kind, seen in result["faults_per_kind"].items():
        say(f"{kind}: {seen['times']} times, messages sent during each: {seen['messages_sent_during']}")
    for name in MUST_BE_ZERO:
        say(f"checked {name}: {result[name]}")
    for channel, n in result["channels"].items():
        say(
            f"{channel}: {n['accepted']} of {n['sent']} messages accepted, {n['stored']} stored, {n['lost']} lost, "
            f"{n['duplicated']} duplicated, {n['replayed']} webhooks replayed; "
            f"{n['replies']} replies accepted, {n['replies_delivered']} delivered, "
            f"{n['replies_repeated_after_kill']} repeated after a kill of its connector"
        )
    say(
        f"{result['accepted']} of {result['messages']} messages accepted, {result['replies']} replies, "
        f"{result['assignments']} assignments; {result['run']['seconds']} s"
    )


if __name__ == "__main__":
    sys.exit(main())
