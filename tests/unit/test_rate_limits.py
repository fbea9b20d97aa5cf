"""Per-key token buckets (pure)."""

from __future__ import annotations

from services.router.domain.rate_limits import RateLimiter, retry_after_header


def test_a_burst_then_the_rate_then_recovery() -> None:
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.take("k", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take("k", 0.0)
    assert wait == 0.5  # one token comes back every half second
    assert limiter.take("other", 0.0) == 0.0  # keys do not share a bucket
    assert limiter.take("k", 0.5) == 0.0
    assert limiter.take("k", 0.5) > 0
    assert [limiter.take("k", 10.0) for _ in range(3)] == [0.0, 0.0, 0.0]  # refilled, never above the burst
    assert limiter.take("k", 10.0) > 0


def test_retry_after_is_whole_seconds_and_never_zero() -> None:
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(1.2) == "2"
