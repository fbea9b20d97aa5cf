"""The fault plan is by messages sent and spreads every kind over the whole run; a fault no message saw, a kind
short of its rounds, a fault that failed or did not recover each fail the run."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from tests.faults.schedule import FaultRecord, plan, summarize

KINDS = ["a", "b", "c", "d", "e", "f", "g"]


def test_every_kind_comes_round_each_round_evenly_over_all_the_messages() -> None:
    faults = plan(KINDS, 3, 100_000)
    assert Counter(f.kind for f in faults) == dict.fromkeys(KINDS, 3)
    assert [f.kind for f in faults] == KINDS * 3
    at = [f.at_message for f in faults]
    gaps = {b - a for a, b in itertools.pairwise(at)}
    assert max(gaps) - min(gaps) <= 1, gaps  # equal shares
    assert at[0] == 100_000 // 42 and at[-1] == 100_000 - 100_000 // 42 - 1  # the first and last share too


def test_a_run_too_short_to_carry_its_faults_is_refused() -> None:
    with pytest.raises(ValueError):
        plan(KINDS, 3, 41)


def test_a_fault_no_message_saw_or_a_kind_short_of_its_rounds_is_counted() -> None:
    records = [
        FaultRecord("a", "", 10, messages_sent_during=5, recovered_s=1.0),
        FaultRecord("b", "", 20, messages_sent_during=0, recovered_s=1.0),
        FaultRecord("a", "", 30, messages_sent_during=4, recovered_s=None, error="AssertionError: port open"),
    ]
    summary = summarize(records, ["a", "b", "c"], 1)
    assert summary["faults_without_traffic"] == 1
    assert summary["fault_kinds_short"] == 1  # c never happened; a failed once but happened once
    assert summary["faults_failed"] == 1 and summary["faults_not_recovered"] == 1
    assert summary["per_kind"]["a"] == {"times": 1, "messages_sent_during": [5, 4]}
