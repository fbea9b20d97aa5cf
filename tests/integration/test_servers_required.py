"""On CI a test that needs PostgreSQL and Kafka fails, loudly, when they are missing: it never skips."""

from __future__ import annotations

import subprocess
import sys

from tests.support.processes import ROOT, clean_env


def test_server_tests_fail_instead_of_skipping_when_the_servers_are_missing() -> None:
    env = clean_env(database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none", kafka_bootstrap="127.0.0.1:1")
    env["CI"] = "true"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rfEs",
            "tests/integration/test_store_contract.py",
            "-k",
            "postgresql and redelivered",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "1 error" in out or "1 failed" in out, out
    assert "skipped" not in out
    assert "PostgreSQL at 127.0.0.1:1 is unreachable" in out
