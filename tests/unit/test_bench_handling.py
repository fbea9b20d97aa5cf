"""The benchmark's reading of a consume loop's batch handling (``tests/bench/pipeline_stats.handling``): from two
readings of its ``switchboard_consumer_batch_seconds`` count and sum, the batches of the phase, their mean
handling time and the share of the phase spent handling them."""

from __future__ import annotations

from tests.bench.pipeline_stats import Handled, handling


def test_the_batches_between_two_readings() -> None:
    got = handling(Handled(batches=10, seconds=1.0), Handled(batches=30, seconds=4.0), phase_s=4.0)
    assert got == {"batches": 20, "mean_ms": 150.0, "busy_share": 0.75}


def test_a_phase_without_batches_says_so() -> None:
    assert handling(Handled(5, 2.0), Handled(5, 2.0), phase_s=10.0) == {"batches": 0}
