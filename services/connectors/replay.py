"""A webhook's signed token is good for one message: the first body seen with it is remembered for as long as its
timestamp is acceptable; the same body again is a provider's retry (answered, not ingested twice), another body
is a replay (refused). Per process; across replicas the event id bound to the token does the same job, since the
router stores each event id once."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from enum import Enum


class Seen(Enum):
    NEW = "new"
    RETRY = "retry"
    REPLAY = "replay"


class ReplayCache:
    def __init__(self, ttl_s: float, max_entries: int = 100_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._seen: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def check(self, token: str, body: bytes, now: float | None = None) -> Seen:
        now = time.monotonic() if now is None else now
        while self._seen and (next(iter(self._seen.values()))[0] <= now or len(self._seen) > self.max_entries):
            self._seen.popitem(last=False)
        digest = hashlib.sha256(body).digest()
        known = self._seen.get(token)
        if known is not None:
            return Seen.RETRY if known[1] == digest else Seen.REPLAY
        self._seen[token] = (now + self.ttl_s, digest)
        return Seen.NEW
