"""HTTP ingest on one API-only router replica (SWITCHBOARD_ROLE=api) on the real servers, driven by wrk.

    python -m tests.bench.bench_http [--seconds 20] [--connections 32] [--threads 1]

- The replica: `switchboard router` with role `api` (takes messages over REST, publishes them to Kafka, joins no
  consumer group), on a database and topics of its own, rate limits raised out of the way.
- The load: wrk (Debian's package; installed if missing and possible) in a process of its own, POSTing
  `/v1/messages` with a Lua script that gives every request its own customer, so nothing is deduplicated.
- Reported: requests/s, latency p50/p90/p99 (wrk's own histogram), non-2xx answers, the CPU the replica used
  (utime + stime from /proc) and so requests/s per core of the replica, and the CPU of wrk itself.
- The bare limit, measured in the same run under the same load: `tests/bench/bare_http.py`, the same request
  on the same server stack and Kafka producer with no framework and no logic (under "bare", and the router's
  requests/s as a share of it, "ratio_to_bare").
Merges its figures into tests/bench/results/latest.json under "http_ingest"."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.router.adapters.db.api_keys import generate_key, store_key
from services.router.adapters.db.migrate import upgrade
from services.router.adapters.db.seed import seed_demo
from shared.store import Database
from tests.bench.proc_cpu import cpu_s
from tests.bench.record import record
from tests.conftest import random_name
from tests.support.databases import create_database, drop_database
from tests.support.processes import SWITCHBOARD, clean_env, start, stop, wait_ready
from tests.support.runtime import free_port
from tests.support.servers import ensure_servers

LUA = r"""
local n = 0
local tag = "%(tag)s"
request = function()
  n = n + 1
  local body = '{"customer":{"external_id":"' .. tag .. '-' .. n .. '"},"text":"Where is my order ' .. n .. '?"}'
  return wrk.format("POST", "/v1/messages", {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer %(key)s"}, body)
end
done = function(summary, latency, requests)
  io.write(string.format("BENCH p50=%%d p90=%%d p99=%%d requests=%%d errors=%%d\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99), summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def cpu_seconds(pid: int) -> float:
    spent = cpu_s(pid)
    assert spent is not None, f"process {pid} is gone"
    return spent


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
        if found := shutil.which("wrk"):
            return found
    raise SystemExit("wrk is needed (Debian: apt-get install wrk)")


async def prepare(db_url: str) -> tuple[str, str]:
    tenant, key = random_name("bench"), generate_key()
    db = Database(db_url)
    try:
        await upgrade(db)
        await seed_demo(db, datetime.now(UTC), tenant_id=tenant)
        await store_key(db, tenant, key, "admin", "bench", datetime.now(UTC))
    finally:
        await db.close()
    return tenant, key


def run(seconds: float, connections: int, threads: int) -> dict[str, object]:
    wrk = ensure_wrk()
    db_url, kafka = ensure_servers()
    db_url = asyncio.run(create_database(db_url, random_name("switchboard_http_")))
    try:
        _, key = asyncio.run(prepare(db_url))
        settings = dict(
            database_url=db_url,
            kafka_bootstrap=kafka,
            topic_prefix=random_name("http-") + ".",
            consumer_group=random_name("g-"),
            role="api",
            rate_limit_per_s="1000000",
            rate_limit_burst="1000000",
            log_level="WARNING",
        )
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "post.lua"
            script.write_text(LUA % {"tag": random_name("c"), "key": key})
            load = Load(wrk, script, seconds, connections, threads)
            router = measure([SWITCHBOARD, "router"], settings, Path(tmp) / "router.log", load)
            bare = measure([sys.executable, "-m", "tests.bench.bare_http"], settings, Path(tmp) / "bare.log", load)
    finally:
        asyncio.run(drop_database(db_url))
    return {
        "workload": f"POST /v1/messages, a new customer per request, {connections} connections, {seconds:g} s",
        **router,
        "bare": bare,
        "ratio_to_bare": round(router["requests_per_s"] / bare["requests_per_s"], 3),
        "targets": "≥ 2,500 req/s per core of the replica, p99 < 25 ms",
    }


@dataclass(frozen=True)
class Load:
    """wrk with the request script, the same for the router and the bare server."""

    wrk: str
    script: Path
    seconds: float
    connections: int
    threads: int

    def args(self, seconds: float, url: str) -> list[str]:
        return [
            self.wrk,
            f"-t{self.threads}",
            f"-c{self.connections}",
            f"-d{seconds:g}s",
            "--latency",
            "-s",
            str(self.script),
            url,
        ]


def measure(command: list[str], settings: dict[str, str], log: Path, load: Load) -> dict[str, Any]:
    """One server process under the load, after a 2 s warm-up: its throughput, wrk's latency histogram, and
    the CPU the server and wrk used."""
    port = free_port()
    proc = start(command, clean_env(**settings, http_port=str(port)), log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, log)
        subprocess.run(load.args(2, url), check=True, capture_output=True)
        before, spent = cpu_seconds(proc.pid), _children_cpu()
        out = subprocess.run(load.args(load.seconds, url), check=True, capture_output=True, text=True).stdout
        wrk_cpu = _children_cpu() - spent
        server_cpu = cpu_seconds(proc.pid) - before
    finally:
        stop(proc)
    rate = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    figures = dict(re.findall(r"(\w+)=(\d+)", out.split("BENCH", 1)[1]))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    cores_used = server_cpu / load.seconds
    return {
        "requests_per_s": round(rate),
        "latency_ms": {k: int(figures[k]) / 1000 for k in ("p50", "p90", "p99")},
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": int(figures["errors"]),
        "replica_cores_used": round(cores_used, 2),
        "requests_per_s_per_replica_core": round(rate / cores_used) if cores_used else None,
        "load_generator_cpu_s": round(wrk_cpu, 2),
    }


def _children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    result = run(args.seconds, args.connections, args.threads)
    record("http_ingest", result)


if __name__ == "__main__":
    main()
