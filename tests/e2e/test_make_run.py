"""Acceptance of the embedded default, as a newcomer meets it: `make run`, then the README's curl commands."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.processes import ROOT, clean_env, make_run, wait_ready
from tests.support.runtime import free_port
from tests.support.sse import sse_events

KEY = "sb_e2e-" + os.urandom(12).hex()


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    port = free_port()
    log = tmp_path_factory.mktemp("make-run") / "make-run.log"
    # The embedded default, on a database of its own so the test never meets a developer's demo data.
    db = tmp_path_factory.mktemp("desk") / "switchboard.db"
    env = clean_env(
        http_port=str(port),
        smtp_port=str(free_port()),
        bootstrap_api_key=KEY,
        database_url=f"sqlite+aiosqlite:///{db}",
        blob_dir=str(db.parent / "blobs"),
    )
    base = f"http://127.0.0.1:{port}"
    with make_run(ROOT, env, log) as proc:
        wait_ready(base, proc, log, timeout_s=180)
        yield base, log


def readme_curl(base: str, key: str = KEY) -> list[str]:
    """The README's "post a message" command, verbatim but for host and key."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("curl -H \"Authorization: Bearer $KEY\" -H 'Content-Type: application/json'")
    command = readme[start : readme.index("\n```", start)].replace("\\\n", " ")
    command = command.replace("http://127.0.0.1:8000", base).replace("$KEY", key)
    return ["bash", "-c", command + " --silent --show-error --fail-with-body"]


async def test_readme_curl_message_is_assigned_to_the_online_demo_agent_on_its_feed_within_a_second(desk):  # type: ignore[no-untyped-def]
    base, _ = desk
    assert shutil.which("curl"), "the README's commands use curl"
    async with (
        httpx.AsyncClient(base_url=base, timeout=10) as http,
        http.stream("GET", "/v1/agents/agent-ada/feed", headers={"Authorization": f"Bearer {KEY}"}) as feed,
    ):
        assert feed.status_code == 200
        events = sse_events(feed)
        started = time.monotonic()
        posted = await asyncio.to_thread(subprocess.run, readme_curl(base), capture_output=True, text=True)
        assert posted.returncode == 0, posted.stdout + posted.stderr
        assert '"event_id"' in posted.stdout
        event = await asyncio.wait_for(anext(events), 1.0)  # a fresh desk: Ada's first offer is ours
        data = event.json()
        elapsed = time.monotonic() - started
    # the demo's Messaging queue offers conversations (accept in the console or POST /v1/agents/{id}/accept)
    assert event.event == "offer" and data["agent_id"] == "agent-ada" and data["tenant"] == "demo"
    assert elapsed < 1.0
    # and it reads back: the conversation holds the message the curl sent
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        conv = (
            await http.get(f"/v1/conversations/{data['conversation_id']}", headers={"Authorization": f"Bearer {KEY}"})
        ).json()
    # the curl's message, then the desk's acknowledgement telling Sam when to expect an answer
    first = conv["messages"][0]
    assert (first["direction"], first["text"]) == ("inbound", "Hello!")
    assert [m["author"] for m in conv["messages"][1:]] == ["system"], conv["messages"]


def test_the_demo_desk_has_two_queues_and_three_agents_one_online(desk) -> None:  # type: ignore[no-untyped-def]
    base, _ = desk
    auth = {"Authorization": f"Bearer {KEY}"}
    queues = httpx.get(f"{base}/v1/queues", headers=auth).json()
    agents = httpx.get(f"{base}/v1/agents", headers=auth).json()
    assert len(queues) >= 2 and len(agents) >= 3
    assert [a["id"] for a in agents if a["presence"] == "online"] == ["agent-ada"]


def test_ops_endpoints_answer(desk) -> None:  # type: ignore[no-untyped-def]
    base, _ = desk
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{base}/readyz").json() == {"status": "ready"}
    spec = httpx.get(f"{base}/openapi.json").json()
    assert {
        "/v1/messages",
        "/v1/conversations/{conversation_id}",
        "/v1/customers/{customer_id}",
        "/v1/agents/{agent_id}/feed",
    } <= set(spec["paths"])


def test_logs_are_json_and_carry_no_message_text(desk) -> None:  # type: ignore[no-untyped-def]
    _, log = desk
    lines = [line for line in Path(log).read_text().splitlines() if line.startswith("{")]
    assert any('"event":"router.started"' in line for line in lines)
    assert not [line for line in lines if "Hello!" in line]  # the banner may show the example; logs never
