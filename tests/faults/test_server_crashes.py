"""The server crashes work on whatever port a server listens on, not only on the ports deploy/local/services.sh
uses: a process is found by its port, killed, seen gone (the port refuses connections) and started again as it
was (a new process on the same port). A server that cannot be crashed from here says so, it is never skipped."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.server_crashes import CrashUnavailable, KafkaBroker, PostgresServer, listening_pid, port_open
from tests.support.runtime import free_port

# A stand-in for a broker: listens on the port it is given, carries kafka.Kafka on its command line, and ends
# by itself within ten minutes whatever happens to the test.
LISTENER = (
    "import socket, sys, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
    "s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); time.sleep(600)"
)


def test_a_broker_on_a_port_of_its_own_is_killed_and_started_again_as_it_was(tmp_path: Path) -> None:
    port = free_port()
    first = subprocess.Popen([sys.executable, "-c", LISTENER, str(port), "kafka.Kafka"], cwd=tmp_path)
    restarted = None
    try:
        while not port_open(port):
            assert first.poll() is None
        broker = KafkaBroker(f"127.0.0.1:{port}", tmp_path)
        broker.check()
        down = broker.crash()
        assert down["pid"] == first.pid and first.wait(5) == -signal.SIGKILL and not port_open(port)
        up = broker.restart()
        restarted = up["new_pid"]
        assert up["restarted_by"] == "its own command line" and restarted != first.pid and port_open(port)
        assert listening_pid(port) == restarted
        assert Path(f"/proc/{restarted}/cmdline").read_bytes().split(b"\0")[-2] == b"kafka.Kafka"
    finally:
        first.kill()
        if restarted is not None:
            os.kill(restarted, signal.SIGKILL)


def test_a_server_that_is_not_here_or_not_a_broker_cannot_be_crashed_and_says_so(tmp_path: Path) -> None:
    with pytest.raises(CrashUnavailable, match="not on this machine"):
        KafkaBroker("broker.internal:9092", tmp_path)
    with pytest.raises(CrashUnavailable, match="no process"):
        KafkaBroker(f"127.0.0.1:{free_port()}", tmp_path).check()
    port = free_port()
    other = subprocess.Popen([sys.executable, "-c", LISTENER, str(port)])
    try:
        while not port_open(port):
            assert other.poll() is None
        with pytest.raises(CrashUnavailable, match="not a Kafka broker"):
            KafkaBroker(f"127.0.0.1:{port}", tmp_path).check()
    finally:
        other.kill()
        other.wait()


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    assert found, "PostgreSQL's binaries are needed (deploy/local/services.sh installs them)"
    return found[-1].parent


@pytest.fixture
def own_cluster() -> Iterator[tuple[int, Path]]:
    """A PostgreSQL cluster of this test's own on a free port (as the postgres user when we are root)."""
    bin_dir, port = _pg_bin(), free_port()
    data = Path(tempfile.mkdtemp(prefix="faults-pg-")) / "data"
    as_pg: list[str] = []
    if os.geteuid() == 0:
        as_pg = ["runuser", "-u", "postgres", "--"]
        owner = pwd.getpwnam("postgres")
        os.chown(data.parent, owner.pw_uid, owner.pw_gid)
    subprocess.run([*as_pg, str(bin_dir / "initdb"), "-D", str(data), "-U", "switchboard", "--auth=trust"],
                   check=True, capture_output=True)  # fmt: skip
    options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
    start = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(data / "log.txt"), "-w", "-o", options, "start"]
    subprocess.run([*as_pg, *start], check=True, capture_output=True)
    try:
        yield port, data
    finally:
        subprocess.run([*as_pg, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(data.parent, ignore_errors=True)


def test_postgres_on_a_port_of_its_own_is_stopped_immediately_and_comes_back_with_its_options(
    own_cluster: tuple[int, Path],
) -> None:
    port, data = own_cluster
    server = PostgresServer(f"postgresql+asyncpg://switchboard@127.0.0.1:{port}/postgres")
    server.check()
    down = server.crash()
    assert down["stop"] == "pg_ctl -m immediate" and not port_open(port)
    assert "immediate shutdown request" in (data / "log.txt").read_text()
    up = server.restart()
    assert up["restarted_by"] == "pg_ctl start with postmaster.opts" and up["new_pid"] != down["pid"]
    assert port_open(port)
    log = (data / "restarts.log").read_text()
    assert "was interrupted" in log or "automatic recovery" in log or "not properly shut down" in log, log
