"""Per-key rate limits: a token bucket per API key (``rate`` requests a second on average, bursts of ``burst``).
Pure: the caller passes the time. In-process, so each router replica enforces its own share (a key spread over
N replicas by a load balancer gets up to N times the rate): a first line of defence, not a billing meter."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, now: float) -> float:
        """0 if the request may go ahead (and counts it), else the seconds to wait before retrying."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.clear()  # bounded memory: forgetting buckets only ever lets requests through
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate


def retry_after_header(wait_s: float) -> str:
    """Retry-After is whole seconds (RFC 9110 §10.2.3): round up, never 0."""
    return str(max(1, math.ceil(wait_s)))
