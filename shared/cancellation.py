"""Telling a shutdown from a library's own cancelled wait."""

from __future__ import annotations

import asyncio


def cancelled_from_outside() -> bool:
    """Whether the running task was asked to stop (a shutdown), as opposed to a CancelledError raised out of a
    library's own internal wait (aiokafka cancels some of its tasks when its group coordinator closes), which
    must not end a loop that is meant to run until told to stop."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
