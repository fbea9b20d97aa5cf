"""The bounded fault suite for CI: every fault kind once (SWITCHBOARD_FAULTS_CI_ROUNDS), placed by messages sent,
on whatever ports the servers use, with messages by the REST API and as signed Telegram, WhatsApp, Messenger and
SMS webhooks; any count that must be zero fails it, and so does a fault kind that did not happen, a fault no
message saw, or a channel whose messages were not all accepted or whose replies never went out."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Servers
from tests.faults.channels import REPLY_CHANNELS
from tests.faults.harness import KINDS, MUST_BE_ZERO, run
from tests.faults.run import report
from tests.support.processes import ROOT

MESSAGES = int(os.environ.get("SWITCHBOARD_FAULTS_CI_MESSAGES", "2400"))
ROUNDS = int(os.environ.get("SWITCHBOARD_FAULTS_CI_ROUNDS", "1"))
REPLY_BURST = 300  # replies posted around the kill of the connectors: in flight when they die
RATE = 18.0  # messages per second offered: about 11 s between faults; each waits for the last one's recovery


@pytest.mark.timeout(1800)  # a broker restart recovers every partition the tests left: minutes
async def test_no_message_lost_or_doubled_through_crashes_restarts_latency_and_loss(
    servers: Servers, tmp_path: Path
) -> None:
    result = await run(
        servers.database_url,
        servers.kafka_bootstrap,
        MESSAGES,
        tmp_path,
        rate=RATE,
        rounds=ROUNDS,
        reply_burst=REPLY_BURST,
    )
    _save(result)
    report(result)
    happened = {kind for kind, seen in result["faults_per_kind"].items() if seen["times"] >= ROUNDS}
    assert happened == set(KINDS), result["faults"]
    assert all(f["messages_sent_during"] > 0 for f in result["faults"]), result["faults"]
    assert result["accepted"] == result["messages"] == MESSAGES, result
    channels = result["channels"]
    assert set(channels) == {"in_app", *REPLY_CHANNELS}, channels
    assert all(n["sent"] > 0 and n["accepted"] == n["stored"] == n["sent"] for n in channels.values()), channels
    assert all(channels[c]["replies_delivered"] > 0 for c in REPLY_CHANNELS), channels
    assert result["assignments"] > 0 and result["replies"] > 0, result
    assert {name: result[name] for name in MUST_BE_ZERO} == dict.fromkeys(MUST_BE_ZERO, 0), result


def _save(result: dict[str, Any]) -> None:
    artifacts = Path(os.environ.get("SWITCHBOARD_TEST_ARTIFACTS", ROOT / ".local" / "artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "faults-ci.json").write_text(json.dumps(result, indent=2, default=str))
