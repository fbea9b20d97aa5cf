"""The bounded fault suite for CI: the same faults as `make faults` on a smaller message count; any lost,
duplicated, double-assigned or over-capacity message, or a reply delivered twice, fails it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import Servers
from tests.faults.harness import run
from tests.faults.run import MUST_BE_ZERO
from tests.support.processes import ROOT

MESSAGES = int(os.environ.get("SWITCHBOARD_FAULTS_CI_MESSAGES", "2000"))


async def test_no_message_lost_or_doubled_through_kills_restarts_latency_and_loss(
    servers: Servers, tmp_path: Path
) -> None:
    result = await run(servers.database_url, servers.kafka_bootstrap, MESSAGES, tmp_path, rate=250.0)
    _save(result)
    assert result["messages"] == MESSAGES, result  # clients retried until every message was accepted
    assert len(result["faults"]) >= 5, result
    assert result["assignment_events_replayed"] > 0 and result["replies"] > 0, result
    assert {name: result[name] for name in MUST_BE_ZERO} == dict.fromkeys(MUST_BE_ZERO, 0), result


def _save(result: dict[str, object]) -> None:
    artifacts = Path(os.environ.get("SWITCHBOARD_TEST_ARTIFACTS", ROOT / ".local" / "artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "faults-ci.json").write_text(json.dumps(result, indent=2, default=str))
