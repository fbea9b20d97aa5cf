"""Where every benchmark's figures go: merged, under the benchmark's key, into tests/bench/results/latest.json
with the machine they were measured on and when."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from tests.bench.bench_routing import RESULTS, machine


def record(key: str, figures: dict[str, Any]) -> None:
    """Print ``figures`` and store them under ``key``, keeping every other benchmark's."""
    print(json.dumps(figures, indent=2))
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[key] = {**figures, "machine": machine(), "at": datetime.now(UTC).isoformat()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
