"""`switchboard tenant create` and `switchboard desk apply` on a real store, embedded (SQLite file) and
production (PostgreSQL), next to a running router: the desk a file declares is what the REST API then shows,
a changed field is the only change, a dry run and a second apply write nothing, a bad file writes nothing."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.cli import main
from services.router.adapters.db import tables as t
from tests.conftest import random_name
from tests.support.processes import SWITCHBOARD, clean_env
from tests.support.runtime import Desk, serving, settings_for, started_desk

DESK = """
profiles:
  - {name: Standard, capacity: 3, weights: {default: 1, email: 0.5}}
queues:
  - name: Messaging
    channels: [chat, sms]
    routing:
      offer_timeout_s: 60
      overflow_after_s: 300
      overflow_to: General
      steps: [{after_s: 0, agents: [Ada]}, {after_s: 120}]
  - {name: Email, channels: [email]}
  - {name: General, is_default: true}
agents:
  - {name: Ada, queues: [Messaging, General], profile: Standard, skills: {billing: 3}}
  - {name: Alan, queues: [Email, General], languages: [en]}
"""


@pytest.fixture(params=["embedded", "production"])
async def desk(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Desk]:
    """A router serving the REST API on each shape, its consumers off (see ``routing_version``)."""
    servers = request.getfixturevalue("servers") if request.param == "production" else None
    async with started_desk(settings_for(request.param, tmp_path, servers), consume=False) as started:
        yield started


class Cli:
    """The `switchboard` command on the desk's store, as a process (as operators run it) or in this process."""

    def __init__(self, desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
        settings = desk.router.settings
        self.env = clean_env(database_url=settings.database_url, topic_prefix=settings.topic_prefix)
        for name in ("DATABASE_URL", "TOPIC_PREFIX"):
            monkeypatch.setenv(f"SWITCHBOARD_{name}", self.env[f"SWITCHBOARD_{name}"])

    async def process(self, *args: str) -> subprocess.CompletedProcess[str]:
        run = [SWITCHBOARD, *args]
        return await asyncio.to_thread(subprocess.run, run, env=self.env, capture_output=True, text=True, timeout=120)

    async def here(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
        """(exit status, stdout, stderr) of ``main(args)``, run in a thread (it runs its own event loop)."""

        def exit_status() -> Any:
            return main(list(args))

        status = await asyncio.to_thread(exit_status)
        out, err = capsys.readouterr()
        return int(status), out, err


@asynccontextmanager
async def api_of(desk: Desk, key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serving(desk.router) as base,
        httpx.AsyncClient(base_url=base, timeout=10, headers={"Authorization": f"Bearer {key}"}) as client,
    ):
        yield client


async def read_back(api: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    """The tenant's profiles, queues and agents through the REST API, by name."""

    async def got(path: str) -> Any:
        r = await api.get(path)
        assert r.status_code == 200, r.text
        return r.json()

    return {
        "profiles": {p["name"]: p for p in (await got("/v1/profiles"))["items"]},
        "queues": {q["name"]: await got(f"/v1/queues/{q['id']}") for q in await got("/v1/queues")},
        "agents": {a["name"]: await got(f"/v1/agents/{a['id']}") for a in await got("/v1/agents")},
    }


async def routing_version(desk: Desk, tenant: str) -> int:
    """Bumped by every configuration change in its transaction (and by routing passes, which this router,
    its consumers off, does not run): unchanged means nothing was written."""
    async with desk.router.repo.reader() as conn:
        row = (await conn.execute(select(t.tenants.c.routing_version).where(t.tenants.c.id == tenant))).one()
    return int(row.routing_version)


async def test_a_desk_file_is_applied_then_only_its_changes_are(
    desk: Desk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli, tenant = Cli(desk, monkeypatch), random_name("acme-")
    created = await cli.process("tenant", "create", "--id", tenant, "--name", "Acme")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    again = await cli.process("tenant", "create", "--id", tenant)
    assert again.returncode == 2 and "exists already" in again.stderr and again.stdout == ""

    desk_file = tmp_path / "desk.yaml"
    desk_file.write_text(f"tenant: {tenant}\n{DESK}")
    applied = await cli.process("desk", "apply", "-f", str(desk_file))
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines()[-1] == f"tenant {tenant}: 6 created, 0 updated, 0 unchanged"

    async with api_of(desk, key) as api:
        first = await read_back(api)
        queues, agents = first["queues"], first["agents"]
        assert set(queues) == {"Messaging", "Email", "General"} and set(agents) == {"Ada", "Alan"}
        messaging = queues["Messaging"]["routing"]
        assert messaging["offer_timeout_s"] == 60 and messaging["overflow_to"] == queues["General"]["id"]
        assert messaging["steps"][0]["agents"] == [agents["Ada"]["id"]]
        assert queues["General"]["is_default"] and not queues["Email"]["is_default"]
        ada = agents["Ada"]
        assert ada["queue_ids"] == [queues["Messaging"]["id"], queues["General"]["id"]]
        assert ada["profile_id"] == first["profiles"]["Standard"]["id"] and ada["skills"] == {"billing": 3}
        assert ada["presence"] == "offline"

        # the same file again: nothing to do, nothing written
        version = await routing_version(desk, tenant)
        status, out, _ = await cli.here(capsys, "desk", "apply", "-f", str(desk_file))
        assert status == 0 and out.splitlines()[-1] == f"tenant {tenant}: no change (6 unchanged)"
        assert await read_back(api) == first and await routing_version(desk, tenant) == version

        # one field changed: the dry run shows it and writes nothing
        desk_file.write_text(desk_file.read_text().replace("offer_timeout_s: 60", "offer_timeout_s: 30"))
        status, out, _ = await cli.here(capsys, "desk", "apply", "-f", str(desk_file), "--dry-run")
        assert status == 0
        assert "update     queue 'Messaging'\n             routing.offer_timeout_s: 60.0 → 30.0\n" in out
        assert out.splitlines()[-1].endswith("0 to create, 1 to update, 5 unchanged (dry run: nothing written)")
        assert await read_back(api) == first and await routing_version(desk, tenant) == version

        # applied: that field changes, nothing else does
        status, out, _ = await cli.here(capsys, "desk", "apply", "-f", str(desk_file))
        assert status == 0 and out.splitlines()[-1] == f"tenant {tenant}: 0 created, 1 updated, 5 unchanged"
        assert await routing_version(desk, tenant) == version + 1  # one change, one write
        second = await read_back(api)
        assert second["queues"]["Messaging"]["routing"] == {**messaging, "offer_timeout_s": 30.0}
        first["queues"]["Messaging"]["routing"]["offer_timeout_s"] = 30.0
        assert second == first

        # a bad file: refused with the field named, nothing written
        version += 1
        bad = tmp_path / "bad.yaml"
        bad.write_text(desk_file.read_text().replace("languages: [en]", "languages: [en], capacity: {email: -1}"))
        status, out, err = await cli.here(capsys, "desk", "apply", "-f", str(bad))
        assert status == 2 and out == ""
        assert "agents['Alan'].capacity.email: Input should be greater than or equal to 0" in err
        assert await read_back(api) == second and await routing_version(desk, tenant) == version
