"""The one consume loop every stage runs: fetch a batch, handle it, commit only after the handler returned
(its effects are durable). Any failure: no commit, back off, re-join the group and get the batch again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from shared.bus import Bus, Record
from shared.metrics import CONSUMER_LAG

log = logging.getLogger(__name__)

LAG_EVERY_S = 5.0
Handler = Callable[[list[Record]], Awaitable[object]]


async def consume(
    bus: Bus,
    topics: Sequence[str],
    group: str,
    handle: Handler,
    stop: asyncio.Event,
    *,
    max_records: int = 500,
    from_beginning: bool = True,
    poll_s: float = 0.2,
    max_backoff_s: float = 5.0,
    joined: asyncio.Event | None = None,
    on_assignment: Callable[[frozenset[tuple[str, int]]], None] | None = None,
) -> None:
    """``joined`` is set once the group has given this member its partitions (and start positions);
    ``on_assignment`` hears the member's partitions after every fetch (they move in rebalances), and none
    once it has left the group."""
    backoff = 0.1
    while not stop.is_set():
        try:
            consumer = await bus.subscribe(topics, group, from_beginning=from_beginning)
        except Exception as exc:
            log.warning("consumer.subscribe_failed", extra={"group": group, "error": repr(exc)})
            await _sleep_or_stop(stop, backoff)
            backoff = min(max_backoff_s, backoff * 2)
            continue
        if joined is not None:
            joined.set()
        try:
            # Stop is checked between batches only: a batch in flight is finished and committed (graceful).
            measured = 0.0
            loop = asyncio.get_running_loop()
            while not stop.is_set():
                records = await consumer.getmany(poll_s, max_records)
                if on_assignment is not None:
                    on_assignment(consumer.assignment())
                if loop.time() - measured >= LAG_EVERY_S:
                    measured = loop.time()
                    for topic, lag in (await consumer.lag()).items():
                        CONSUMER_LAG.labels(topic=topic, group=group).set(lag)
                if not records:
                    continue
                await handle(records)
                await consumer.commit()
                backoff = 0.1
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error(
                "consumer.batch_failed",
                extra={"group": group, "error": repr(exc), "retriable": getattr(exc, "retriable", None)},
            )
            await _sleep_or_stop(stop, backoff)
            backoff = min(max_backoff_s, backoff * 2)
        finally:
            if on_assignment is not None:
                on_assignment(frozenset())
            try:
                await consumer.close()
            except Exception as exc:
                log.warning("consumer.close_failed", extra={"group": group, "error": repr(exc)})


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
