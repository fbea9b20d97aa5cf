"""A queue's ``steps`` as a supervisor writes them (the API's JSON) → the engine's steps, or a refusal."""

from __future__ import annotations

import pytest

from services.router.domain.errors import InvalidCommand
from services.router.domain.routing.queue_config import check, steps_of
from services.router.domain.routing.specs import Step


def test_a_step_may_name_another_queue_whose_agents_take_the_work() -> None:
    config = {"steps": [{"after_s": 0}, {"after_s": 120, "queue": "tier2", "skills": {"billing": 2}}, {"after_s": 600}]}
    check(config)
    assert steps_of(config) == (
        Step(0.0),
        Step(120.0, skills={"billing": 2}, queue="tier2"),
        Step(600.0),
    )


@pytest.mark.parametrize("queue", ["", "  ", 7, ["tier2"]])
def test_a_step_naming_no_usable_queue_is_refused(queue: object) -> None:
    with pytest.raises(InvalidCommand, match="queue"):
        check({"steps": [{"after_s": 0}, {"after_s": 60, "queue": queue}]})
