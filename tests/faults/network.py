"""The network between the routers and their servers, through Toxiproxy: PostgreSQL behind one proxy both routers
use, Kafka behind one proxy per router (the broker's PROXIED_A and PROXIED_B listeners advertise those proxies,
so every connection a router makes to the broker goes through its own). The faults: latency, bandwidth, resets,
and the router that owns the desk cut off from Kafka while it still reaches PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.faults.server_crashes import KafkaBroker
from tests.faults.toxiproxy import Toxiproxy

TOXIC_S = 4.0  # how long latency and bandwidth limits last
LATENCY_MS, JITTER_MS = 50, 10  # each way
BANDWIDTH_KBPS = 32  # each way: a router's traffic at the suite's rates needs several times this
RESETS, RESET_S, BETWEEN_RESETS_S = 3, 1.0, 0.7
EXPELLED_WITHIN_S = 60.0  # the group's session timeout is 10 s; a rebalance follows
HELD_AFTER_S = 3.0  # the survivor routes alone this long before the cut heals
PARTITIONS = re.compile(r"^switchboard_routing_partitions (\S+)$", re.MULTILINE)
REBUILDS = re.compile(r"^switchboard_routing_rebuilds_total (\S+)$", re.MULTILINE)
OWNED = re.compile(r"^switchboard_routing_owned_tenants (\S+)$", re.MULTILINE)
DECISIONS = re.compile(r"^switchboard_routing_decisions_total\{[^}]*\} (\S+)$", re.MULTILINE)


class Network:
    def __init__(self, work_dir: Path) -> None:
        self.toxi = Toxiproxy(work_dir / "toxiproxy.log")
        self.kafka: list[str] = []  # the Kafka proxies, one per router, in the order of ``kafka_bootstraps``

    def start(self, postgres: str, broker: KafkaBroker, routers: int) -> tuple[int, list[str]]:
        """The proxies: returns the port to reach PostgreSQL at and one Kafka bootstrap per router."""
        self.toxi.start()
        pg_port = self.toxi.proxy("postgres", postgres)
        listeners = broker.proxied_listeners()
        if len(listeners) < routers:
            raise AssertionError(f"{routers} routers need as many proxied Kafka listeners; the broker has {listeners}")
        bootstraps = []
        for n, (_name, (broker_port, advertised)) in enumerate(sorted(listeners.items())[:routers]):
            proxy = f"kafka_{chr(ord('a') + n)}"
            self.toxi.proxy(proxy, f"127.0.0.1:{broker_port}", listen_port=advertised)
            self.kafka.append(proxy)
            bootstraps.append(f"127.0.0.1:{advertised}")
        return pg_port, bootstraps

    def stop(self) -> None:
        self.toxi.stop()

    async def latency(self, proxies: Sequence[str]) -> dict[str, Any]:
        return await self._for_a_while(proxies, "latency", latency=LATENCY_MS, jitter=JITTER_MS)

    async def bandwidth(self, proxies: Sequence[str]) -> dict[str, Any]:
        return await self._for_a_while(proxies, "bandwidth", rate=BANDWIDTH_KBPS)

    async def resets(self, proxies: Sequence[str]) -> dict[str, Any]:
        """TCP resets: every connection that carries data while the toxic is on is reset, new ones included."""
        for n in range(RESETS):
            for proxy in proxies:
                self.toxi.add(proxy, "reset", "reset_peer", timeout=0)
            await asyncio.sleep(RESET_S)
            for proxy in proxies:
                self.toxi.remove(proxy, "reset")
            if n < RESETS - 1:
                await asyncio.sleep(BETWEEN_RESETS_S)
        return {"proxies": list(proxies), "toxic": "reset_peer", "times": RESETS, "seconds_each": RESET_S}

    async def cut_off(self, routers: Sequence[str]) -> dict[str, Any]:
        """The router that holds the desk's routing engine (``routers`` are their base URLs, in the order of the
        Kafka proxies) has its connections to Kafka go silent (data dropped, no reset: a partition, not a crash)
        while it still reaches PostgreSQL, until the group has expelled it and the other owns every partition;
        the zombie still believes it owns its share, and its timers still route what it holds. The cut heals
        HELD_AFTER_S later (its stale connections closed, as a long partition leaves them). What must hold is
        the fence: the outside checks count any double assignment or capacity overrun."""
        owned = [await _metric(base, OWNED) for base in routers]
        z = max(range(len(routers)), key=lambda n: owned[n])  # the owner; router-a if neither holds one yet
        zombie, survivors = routers[z], [b for n, b in enumerate(routers) if n != z]
        before = {base: await _partitions(base) for base in routers}
        decisions_before, rebuilds_before = await _metric(zombie, DECISIONS), await _metric(zombie, REBUILDS)
        self.toxi.add(self.kafka[z], "cut", "timeout", timeout=0)
        t0 = time.monotonic()
        try:
            total = sum(before.values())
            while (held := sum([await _partitions(b) for b in survivors])) < total:
                if time.monotonic() - t0 > EXPELLED_WITHIN_S:
                    raise AssertionError(f"the others own {held} of {total} partitions after the cut")
                await asyncio.sleep(0.2)
            took_over_s = round(time.monotonic() - t0, 2)
            zombie_believes = await _partitions(zombie)
            await asyncio.sleep(HELD_AFTER_S)
            decisions_during = await _metric(zombie, DECISIONS) - decisions_before
        finally:
            self.toxi.remove(self.kafka[z], "cut")
            self.toxi.cut_connections(self.kafka[z])
        return {
            "zombie": self.kafka[z],
            "owned_tenants_before": owned,
            "partitions_before": list(before.values()),
            "others_owned_all_after_s": took_over_s,
            "zombie_still_claimed": zombie_believes,  # > 0: a zombie owner, not a clean hand-over
            "zombie_routing_decisions_during": decisions_during,  # its timers at work on what it held
            "zombie_rebuilds_before": rebuilds_before,
            "cut_s": round(time.monotonic() - t0, 2),
        }

    async def _for_a_while(self, proxies: Sequence[str], kind: str, **attributes: Any) -> dict[str, Any]:
        for proxy in proxies:
            self.toxi.add(proxy, kind, kind, **attributes)
        try:
            await asyncio.sleep(TOXIC_S)
        finally:
            for proxy in proxies:
                self.toxi.remove(proxy, kind)
        return {"proxies": list(proxies), "toxic": kind, **attributes, "seconds": TOXIC_S}


async def _metric(base: str, pattern: re.Pattern[str]) -> float:
    """A router's own metric, summed over its labels (0 when it has none yet)."""
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(f"{base}/metrics")).text
    return sum(float(value) for value in pattern.findall(text))


async def _partitions(base: str) -> int:
    """The partitions of the routing log a router believes it owns (its own metric)."""
    return int(await _metric(base, PARTITIONS))
