"""CPU time of the processes a benchmark phase involves, read from the kernel (proc(5): ``/proc/<pid>/stat``
fields 14 and 15, utime and stime, all threads of the process) before and after the phase.

Processes are found by what ``ps`` shows: the Kafka broker is the JVM running ``kafka.Kafka``; PostgreSQL's
backends name their database in their process title (``postgres: <user> <database> <host> <state>``), so the
backends of the benchmark's own database are told apart from other runs' on the same server, and the server's
shared processes (WAL writer, checkpointer, background writer, autovacuum) are counted on their own."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
PidSource = Callable[[], Iterable[int]]


def cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` so far, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: the fields after it follow the last ')'
    fields = raw[raw.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


def _processes() -> list[tuple[int, int, str]]:
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3:
            rows.append((int(parts[0]), int(parts[1]), parts[2]))
    return rows


def kafka_pids() -> list[int]:
    return [pid for pid, _, args in _processes() if args.startswith("java ") and "kafka.Kafka" in args]


def _postmasters(rows: list[tuple[int, int, str]]) -> set[int]:
    return {pid for pid, _, args in rows if "/bin/postgres" in args.split(" ", 1)[0] or args.startswith("postgres -D")}


def postgres_backends(database: str) -> list[int]:
    """Backends serving ``database`` (the router's pool, or the bare pipeline's connection)."""
    rows = _processes()
    masters = _postmasters(rows)
    return [pid for pid, ppid, args in rows if ppid in masters and args.split()[2:3] == [database]]


def postgres_shared() -> list[int]:
    """The server's own processes (postmaster, WAL writer, checkpointer, autovacuum, ...), shared by every
    database on it: every child of the postmaster that is not a client backend (those show ``host(port)``)."""
    rows = _processes()
    masters = _postmasters(rows)
    return sorted(masters | {pid for pid, ppid, args in rows if ppid in masters and "(" not in args})


@dataclass
class CpuMeter:
    """CPU seconds per named group of processes between ``start`` and ``stop``. The groups' pids are looked up
    at both ends: a process that started in between counts from zero, one that ended in between is lost (say
    so: ``lost`` names the groups where that happened)."""

    groups: Mapping[str, PidSource]
    _before: dict[str, dict[int, float]] = field(default_factory=dict)
    lost: set[str] = field(default_factory=set)

    def _read(self) -> dict[str, dict[int, float]]:
        snapshot: dict[str, dict[int, float]] = {}
        for name, pids in self.groups.items():
            snapshot[name] = {pid: s for pid in pids() if (s := cpu_s(pid)) is not None}
        return snapshot

    def start(self) -> None:
        self._before = self._read()
        self.lost = set()

    def stop(self) -> dict[str, float]:
        after = self._read()
        spent: dict[str, float] = {}
        for name, now in after.items():
            before = self._before.get(name, {})
            if set(before) - set(now):
                self.lost.add(name)
            spent[name] = sum(s - before.get(pid, 0.0) for pid, s in now.items())
        return spent
