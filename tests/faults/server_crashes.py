"""Real crashes of the servers the suite runs on: the Kafka broker gets SIGKILL, PostgreSQL an immediate stop
(``pg_ctl -m immediate``: every server process quits at once, no checkpoint, so the restart runs crash
recovery, as after a power cut). Each server is found by the port it listens on, read from
SWITCHBOARD_KAFKA_BOOTSTRAP / SWITCHBOARD_DATABASE_URL, whatever port that is; each crash is verified (the
process is gone and the port refuses connections), and so is each restart (a new process listens).

A server started by deploy/local/services.sh is restarted by it (``kafka-up`` / ``postgres-up`` on the same
port: its pid file and data directory say which servers are its own); any other server on this machine is
started again as it was (Kafka: the same command line, directory and environment; PostgreSQL: ``pg_ctl
start`` with the options its ``postmaster.opts`` recorded). A server that cannot be crashed and restarted
here raises ``CrashUnavailable``: the run fails, the fault is never quietly left out."""

from __future__ import annotations

import os
import pwd
import shlex
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tests.support.processes import ROOT

SERVICES = ROOT / "deploy/local/services.sh"
LOCAL = ROOT / ".local"  # where services.sh keeps its servers (its pid file, its data directory)
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# After SIGKILL the broker recovers every partition's log before it listens, and the tests leave thousands
# (every test has topics of its own): 4,800 took 90-100 s on a busy 2-core machine, 7,200 took 190 s, longer
# than services.sh waits (90 s). The broker it started goes on recovering, and is waited for here.
KAFKA_START_S = 600.0


class CrashUnavailable(RuntimeError):
    """The server cannot be crashed and restarted from here (not on this machine, not ours to signal)."""


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def wait_port(port: int, want_open: bool, timeout_s: float, host: str = "127.0.0.1") -> float:
    """Seconds until the port is open (or refuses connections); raises if it is not by ``timeout_s``."""
    t0 = time.monotonic()
    while port_open(port, host) != want_open:
        if time.monotonic() - t0 > timeout_s:
            state = "open" if want_open else "closed"
            raise AssertionError(f"port {port} not {state} within {timeout_s:.0f} s")
        time.sleep(0.05)
    return round(time.monotonic() - t0, 2)


def listening_pid(port: int) -> int | None:
    """The process listening on a TCP port of this machine (from /proc: the socket's inode, then who holds it).
    Of several holders (children that inherited the socket) the one whose parent is not a holder."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{inode}]")
    holders: set[int] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                holders.add(int(proc.name))
        except OSError:
            continue  # gone, or not ours to look at
    for pid in sorted(holders):
        if _ppid(pid) not in holders:
            return pid
    return None


def _ppid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def _gone(pid: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while Path(f"/proc/{pid}").exists() and _state(pid) != "Z":
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} still running {timeout_s:.0f} s after it was stopped")
        time.sleep(0.02)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def _services_sh(action: str, **env: str) -> subprocess.CompletedProcess[str]:
    """deploy/local/services.sh with the given port settings and none of the URLs (they would make it skip)."""
    environ = {
        k: v for k, v in os.environ.items() if k not in ("SWITCHBOARD_DATABASE_URL", "SWITCHBOARD_KAFKA_BOOTSTRAP")
    }
    environ.update(env)
    # a session of its own: a Ctrl-C meant for the test run must not reach the server it starts
    return subprocess.run(
        [str(SERVICES), action], env=environ, capture_output=True, text=True, timeout=300, start_new_session=True
    )


@dataclass
class Snapshot:
    """How a running process was started, read before it is killed, so that it can be started the same way."""

    pid: int
    cmdline: list[str]
    cwd: str
    environ: dict[str, str]
    stdout: str | None  # the file its output went to, if a file

    @classmethod
    def of(cls, pid: int) -> Snapshot:
        proc = Path(f"/proc/{pid}")
        try:
            cmdline = [a.decode() for a in (proc / "cmdline").read_bytes().split(b"\0") if a]
            environ = dict(a.decode().split("=", 1) for a in (proc / "environ").read_bytes().split(b"\0") if b"=" in a)
            stdout = os.readlink(proc / "fd/1")
            cwd = os.readlink(proc / "cwd")
        except OSError as exc:
            raise CrashUnavailable(f"cannot read how process {pid} was started: {exc}") from exc
        return cls(pid, cmdline, cwd, environ, stdout if stdout.startswith("/") else None)


def _loopback(host: str, what: str) -> None:
    if host not in LOOPBACK:
        raise CrashUnavailable(f"{what} at {host} is not on this machine: it cannot be crashed from here")


class KafkaBroker:
    def __init__(self, bootstrap: str, log_dir: Path) -> None:
        host, port = bootstrap.split(",")[0].rsplit(":", 1)
        _loopback(host, "Kafka")
        self.port = int(port)
        self.log_dir = log_dir
        self._killed: Snapshot | None = None
        self._cluster: str | None = None

    def check(self) -> None:
        """Found and ours to signal: checked before any traffic, so no run has to leave the crash out."""
        self._found()

    def _found(self) -> Snapshot:
        pid = listening_pid(self.port)
        if pid is None:
            raise CrashUnavailable(f"no process of this machine listens on Kafka's port {self.port}")
        found = Snapshot.of(pid)
        if "kafka.Kafka" not in found.cmdline:
            raise CrashUnavailable(f"the process on port {self.port} is not a Kafka broker: {found.cmdline[:3]}")
        return found

    def proxied_listeners(self) -> dict[str, tuple[int, int]]:
        """The broker's listeners meant to be reached through a proxy (deploy/local/kafka/server.properties):
        name → (the port the broker listens on, the port it advertises, where the proxy must listen)."""
        found = self._found()
        config = dict(_properties(Path(found.cwd, found.cmdline[-1])))

        def ports(key: str) -> dict[str, int]:
            entries = (e.split("://", 1) for e in config.get(key, "").split(",") if "://" in e)
            return {name: int(address.rsplit(":", 1)[1]) for name, address in entries}

        listening, advertised = ports("listeners"), ports("advertised.listeners")
        found_names = sorted(n for n in listening if n.startswith("PROXIED_") and n in advertised)
        if not found_names:
            raise CrashUnavailable(
                f"the broker on port {self.port} has no PROXIED_* listeners for the network faults: start it with "
                "deploy/local/services.sh (or give it listeners like deploy/local/kafka/server.properties)"
            )
        return {name: (listening[name], advertised[name]) for name in found_names}

    def _ours(self, pid: int) -> bool:
        pid_file = LOCAL / "kafka/kafka.pid"
        return pid_file.exists() and pid_file.read_text().strip() == str(pid)

    def crash(self) -> dict[str, Any]:
        """SIGKILL: no shutdown of any kind. Returns what was verified."""
        found = self._found()
        partitions, self._cluster = _storage(found)
        os.kill(found.pid, signal.SIGKILL)
        self._killed = found
        _gone(found.pid, 10)
        closed_s = wait_port(self.port, False, 10)
        return {
            "port": self.port,
            "pid": found.pid,
            "signal": "SIGKILL",
            "closed_after_s": closed_s,
            "partitions": partitions,  # each one's log is recovered before the broker listens again
        }

    def restart(self) -> dict[str, Any]:
        found = self._killed
        assert found is not None, "restart() after crash()"
        t0 = time.monotonic()
        said = ""
        if self._ours(found.pid):
            how = "deploy/local/services.sh kafka-up"
            said = _services_sh("kafka-up", SWITCHBOARD_LOCAL_KAFKA_PORT=str(self.port)).stderr
        else:
            how = "its own command line"
            out = Path(found.stdout) if found.stdout else self.log_dir / f"kafka-{self.port}.out"
            with out.open("ab") as sink:
                subprocess.Popen(
                    found.cmdline, cwd=found.cwd, env=found.environ, stdout=sink, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True,
                )  # fmt: skip
        try:
            wait_port(self.port, True, KAFKA_START_S - (time.monotonic() - t0))
        except AssertionError as exc:
            raise AssertionError(f"Kafka not back on port {self.port} ({how}): {exc}; {said[-1500:]}") from None
        new_pid = listening_pid(self.port)
        if new_pid is None or new_pid == found.pid:
            raise AssertionError(f"Kafka's port {self.port} is open but not by a new process ({new_pid})")
        _, cluster = _storage(Snapshot.of(new_pid))
        if cluster != self._cluster:
            # not a crash any more: what the broker had acknowledged is gone with its storage
            raise AssertionError(
                f"the broker came back on new storage (cluster id {self._cluster} → {cluster}): "
                "someone removed its data directory meanwhile"
            )
        return {"restarted_by": how, "new_pid": new_pid, "open_after_s": round(time.monotonic() - t0, 2)}


def _properties(path: Path) -> list[tuple[str, str]]:
    """key=value lines of a Java properties file (comments and blank lines left out)."""
    lines = (line.strip() for line in path.read_text().splitlines())
    return [(k.strip(), v.strip()) for k, _, v in (line.partition("=") for line in lines if line and line[0] != "#")]


def _storage(broker: Snapshot) -> tuple[int | None, str | None]:
    """(partition logs to recover, cluster id) of the broker's first log directory, from its configuration."""
    try:
        config = Path(broker.cwd, broker.cmdline[-1]).read_text()
        log_dir = next(line.split("=", 1)[1] for line in config.splitlines() if line.startswith("log.dirs="))
        partitions = sum(1 for p in Path(log_dir.split(",")[0]).iterdir() if p.is_dir() and "-" in p.name)
        meta = (Path(log_dir.split(",")[0]) / "meta.properties").read_text()
    except (OSError, IndexError, StopIteration):
        return None, None
    cluster = next((line.split("=", 1)[1] for line in meta.splitlines() if line.startswith("cluster.id=")), None)
    return partitions, cluster


class PostgresServer:
    def __init__(self, database_url: str) -> None:
        parsed = urlparse(database_url.replace("postgresql+asyncpg", "postgresql"))
        host = parsed.hostname or "127.0.0.1"
        _loopback(host, "PostgreSQL")
        self.port = parsed.port or 5432
        self._stopped: tuple[int, Path, Path] | None = None

    def check(self) -> None:
        """Found and ours to stop (as the owner of its data directory): checked before any traffic."""
        _, data, _ = self._found()
        self._as_owner(data, [])

    def _found(self) -> tuple[int, Path, Path]:
        """(postmaster pid, data directory, the server's bin directory)."""
        pid = listening_pid(self.port)
        if pid is None:
            raise CrashUnavailable(f"no process of this machine listens on PostgreSQL's port {self.port}")
        found = Snapshot.of(pid)
        args = found.cmdline
        data = Path(args[args.index("-D") + 1]) if "-D" in args else Path(found.cwd)
        if not (data / "postmaster.pid").exists():
            raise CrashUnavailable(f"the process on port {self.port} is not a PostgreSQL postmaster: {args[:3]}")
        exe = Path(os.readlink(f"/proc/{pid}/exe"))
        return pid, data.resolve(), exe.parent

    def _as_owner(self, data: Path, args: list[str]) -> list[str]:
        """PostgreSQL runs as the owner of its data directory (it refuses root): so do pg_ctl's commands."""
        owner = data.stat().st_uid
        if owner == os.geteuid():
            return args
        if os.geteuid() != 0:
            raise CrashUnavailable(f"PostgreSQL's data directory {data} belongs to uid {owner}, not to us")
        return ["runuser", "-u", pwd.getpwuid(owner).pw_name, "--", *args]

    def crash(self) -> dict[str, Any]:
        pid, data, bin_dir = self._found()
        self._stopped = (pid, data, bin_dir)
        stop = [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", "60", "stop"]
        proc = subprocess.run(self._as_owner(data, stop), capture_output=True, text=True, timeout=90)
        if proc.returncode != 0:
            raise AssertionError(f"pg_ctl -m immediate stop failed: {proc.stderr[-2000:]}")
        _gone(pid, 10)
        closed_s = wait_port(self.port, False, 10)
        return {"port": self.port, "pid": pid, "stop": "pg_ctl -m immediate", "closed_after_s": closed_s}

    def restart(self) -> dict[str, Any]:
        assert self._stopped is not None, "restart() after crash()"
        pid, data, bin_dir = self._stopped
        t0 = time.monotonic()
        if data == (LOCAL / "postgres/data").resolve():
            how = "deploy/local/services.sh postgres-up"
            proc = _services_sh("postgres-up", SWITCHBOARD_LOCAL_PG_PORT=str(self.port))
            if proc.returncode != 0:
                raise AssertionError(f"services.sh postgres-up failed ({proc.returncode}): {proc.stderr[-2000:]}")
        else:
            how = "pg_ctl start with postmaster.opts"
            recorded = shlex.split((data / "postmaster.opts").read_text())[1:]  # less the server binary
            if "-D" in recorded:
                i = recorded.index("-D")
                del recorded[i : i + 2]
            start = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(data / "restarts.log"), "-w", "-t", "60"]
            start += ["-o", shlex.join(recorded), "start"]
            proc = subprocess.run(
                self._as_owner(data, start), capture_output=True, text=True, timeout=90, start_new_session=True
            )
            if proc.returncode != 0:
                raise AssertionError(f"pg_ctl start failed: {proc.stderr[-2000:]}")
        wait_port(self.port, True, 60)
        new_pid = listening_pid(self.port)
        if new_pid is None or new_pid == pid:
            raise AssertionError(f"PostgreSQL's port {self.port} is open but not by a new postmaster ({new_pid})")
        return {"restarted_by": how, "new_pid": new_pid, "open_after_s": round(time.monotonic() - t0, 2)}
