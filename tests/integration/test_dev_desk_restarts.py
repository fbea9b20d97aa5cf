"""`switchboard dev` as a newcomer restarts it: the bootstrap admin key printed the first time stays the one
valid key across restarts, kept in `.local/bootstrap-key` (0600), and `switchboard dev --reset` starts a fresh
demo desk with a new key. Each run is a real process in a directory of its own, with the default settings but
its ports."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.processes import SWITCHBOARD, clean_env, start, stop, wait_ready
from tests.support.runtime import free_port

MESSAGE = {"customer": {"external_id": "u-restart", "name": "Sam"}, "text": "Hello!"}


@contextmanager
def dev(home: Path, *args: str) -> Iterator[tuple[str, str]]:
    """`switchboard dev` started in ``home`` (so its `.local/` is there) on free ports; yields its base URL and
    what it printed once ready, and stops it with SIGTERM after."""
    port = free_port()
    env = clean_env(http_port=str(port), smtp_port=str(free_port()), log_level="WARNING")
    log = home / f"dev-{time.monotonic_ns()}.log"
    proc = start([SWITCHBOARD, "dev", *args], env, log, cwd=home)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc, log, timeout_s=120)
        yield base, log.read_text()
    finally:
        assert stop(proc) == 0, log.read_text()[-4000:]


def key_of(home: Path, printed: str) -> str:
    key_file = home / ".local" / "bootstrap-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert f"export KEY={key}" in printed
    return key


def bootstrap_keys(base: str, key: str) -> list[dict[str, object]]:
    r = httpx.get(f"{base}/v1/api-keys", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 200, r.text
    return [k for k in r.json()["items"] if k["name"] == "bootstrap" and k["revoked_at"] is None]


def customers(base: str, key: str) -> list[object]:
    r = httpx.get(
        f"{base}/v1/customers",
        params={"identifier": "app_user:u-restart"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    items: list[object] = r.json()["items"]
    return items


def test_the_bootstrap_key_survives_a_restart_and_reset_starts_a_fresh_desk(tmp_path: Path) -> None:
    with dev(tmp_path) as (base, printed):
        first = key_of(tmp_path, printed)
        for page in ("/console", "/demo", "/docs"):
            assert f"{base}{page}" in printed
        auth = {"Authorization": f"Bearer {first}"}
        assert httpx.post(f"{base}/v1/messages", json=MESSAGE, headers=auth, timeout=10).status_code == 202
        deadline = time.monotonic() + 30
        while not customers(base, first) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(customers(base, first)) == 1

    with dev(tmp_path) as (base, printed):
        assert key_of(tmp_path, printed) == first
        assert len(bootstrap_keys(base, first)) == 1  # the restart added no other valid admin key
        assert len(customers(base, first)) == 1  # and the desk kept its data

    with dev(tmp_path, "--reset") as (base, printed):
        fresh = key_of(tmp_path, printed)
        assert fresh != first
        assert httpx.get(f"{base}/v1/queues", headers={"Authorization": f"Bearer {first}"}).status_code == 401
        assert customers(base, fresh) == []  # a fresh demo desk: the customer is gone
        assert len(bootstrap_keys(base, fresh)) == 1
        assert len(httpx.get(f"{base}/v1/agents", headers={"Authorization": f"Bearer {fresh}"}).json()) >= 3
