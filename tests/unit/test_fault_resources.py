"""The soak's growth figures (tests/faults/resources.py): a least-squares slope per hour over each process's
longest life, and what it adds over that life as a share of the mean."""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.faults.resources import ResourceSampler, Sample, grew, read, slope


def test_slope_is_the_least_squares_line() -> None:
    assert slope([(0, 1), (1, 3), (2, 5)]) == pytest.approx(2.0)
    assert slope([(0, 4), (1, 4), (2, 4)]) == 0.0
    assert slope([(0, 1), (1, 2), (2, 1), (3, 2)]) == pytest.approx(0.2)
    assert slope([(5, 1)]) == 0.0


def test_a_restart_starts_a_new_life_and_the_longest_one_is_judged() -> None:
    sampler = ResourceSampler()
    # router-a: a first life of 10 minutes growing fast (killed), then a flat life of 40 minutes
    sampler.samples += [Sample(60.0 * m, "router-a", 100, 100_000 + 20_000 * m, 50) for m in range(11)]
    sampler.samples += [Sample(60.0 * m, "router-a", 200, 204_800, 60) for m in range(12, 53)]
    # kafka: one life of an hour, memory growing 100 MiB over it from 1,000 MiB, open files flat
    sampler.samples += [Sample(360.0 * k, "kafka", 7, 1_024_000 + 10_240 * k, 300) for k in range(11)]
    growth = sampler.growth()
    assert growth["router-a"]["incarnations"] == 2
    assert growth["router-a"]["span_s"] == 40 * 60
    assert growth["router-a"]["rss_mib_mean"] == 200.0 and growth["router-a"]["rss_mib_per_hour"] == 0.0
    assert growth["kafka"]["rss_mib_per_hour"] == pytest.approx(100.0)
    assert growth["kafka"]["rss_mib_growth"] == pytest.approx(100 / 1050, abs=1e-3)
    assert grew(growth, 0.05) == {"kafka": ["rss_mib"]}
    assert grew(growth, 0.10) == {}


def test_this_process_is_read_and_sampled() -> None:
    rss_kb, fds = read(os.getpid()) or (0, 0)
    assert rss_kb > 1000 and fds >= 3

    async def sample_briefly() -> ResourceSampler:
        sampler = ResourceSampler(every_s=0.05)
        stop = asyncio.Event()
        task = asyncio.create_task(sampler.run(lambda: {"me": os.getpid(), "gone": None}, stop))
        await asyncio.sleep(0.3)
        stop.set()
        await task
        return sampler

    sampler = asyncio.run(sample_briefly())
    assert {s.name for s in sampler.samples} == {"me"} and len(sampler.samples) >= 3
