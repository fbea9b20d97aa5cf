"""The one consume loop every stage runs: fetch a batch, handle it, commit only after the handler returned
(its effects are durable).

Failure policy (``shared/failures.py`` tells the two apart):
- retriable (broker or database unavailable): no commit, back off, re-join the group and get the batch again;
- poison (a record the handler can never apply): the batch is split in halves, each handled on its own, down to
  the one record at fault, which goes to the dead-letter topic with the reason, its partition and offset;
  everything else in the batch is applied and the offsets are committed. One bad message never stops the
  partition (and with it every tenant hashed there)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TypeVar

from shared.bus import Bus, Record, deadletter
from shared.cancellation import cancelled_from_outside
from shared.events import InvalidEvent
from shared.failures import is_retriable, reason_kind, reason_of
from shared.metrics import CONSUMER_BATCH_RECORDS, CONSUMER_BATCH_SECONDS, CONSUMER_LAG

log = logging.getLogger(__name__)

LAG_EVERY_S = 5.0
# A member whose fetches bring nothing for this long while the broker holds records past its position is stuck
# (after a broker crash aiokafka's group coordinator can loop for ever without fetching): it leaves and joins
# the group again with a new consumer.
STALL_S = 20.0
# A batch whose handling takes longer than this is abandoned (not committed) and fetched again by a new member:
# a handler waiting on something that never answers must not hold its partitions (and every tenant hashed
# there) for ever. Far above what a batch takes on a live database and broker.
HANDLE_S = 120.0
Handler = Callable[[list[Record]], Awaitable[object]]
T = TypeVar("T")


async def consume(
    bus: Bus,
    topics: Sequence[str],
    group: str,
    handle: Handler,
    stop: asyncio.Event,
    *,
    deadletter_topic: str,
    max_records: int = 500,
    from_beginning: bool = True,
    poll_s: float = 0.2,
    max_backoff_s: float = 5.0,
    joined: asyncio.Event | None = None,
    on_assignment: Callable[[frozenset[tuple[str, int]]], None] | None = None,
    lanes: int = 1,
    lane_records: int = 1,
    stall_s: float = STALL_S,
    handle_s: float = HANDLE_S,
) -> None:
    """``joined`` is set once the group has given this member its partitions (and start positions);
    ``on_assignment`` hears the member's partitions after every fetch (they move in rebalances), and none once it
    has left the group. With ``lanes`` > 1 a batch is split by partition number into up to that many lanes
    handled concurrently (``handle_in_lanes``), one lane per ``lane_records`` records (``lanes_for``). A member
    that fetches nothing for ``stall_s`` while records wait on its partitions is replaced by a new one
    (``ConsumerStalled``), and so is one whose batch is not handled within ``handle_s``."""
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
        # The batch handled last has its offsets committed while the next is fetched and handled: its effects are
        # durable already, and the broker's answer (a round trip) need not hold the partitions' next records
        # back. One commit at a time, in batch order; a failed one is this member's failure at the next batch.
        committing: asyncio.Task[None] | None = None
        try:
            # Stop is checked between batches only: a batch in flight is finished and committed (graceful).
            measured = 0.0
            loop = asyncio.get_running_loop()
            took, sizes = CONSUMER_BATCH_SECONDS.labels(group=group), CONSUMER_BATCH_RECORDS.labels(group=group)
            progressed = loop.time()  # when a fetch last brought records (or the member joined)
            while not stop.is_set():
                records = await consumer.getmany(poll_s, max_records)
                if on_assignment is not None:
                    on_assignment(consumer.assignment())
                if loop.time() - measured >= LAG_EVERY_S:
                    measured = loop.time()
                    for topic, lag in (await consumer.lag()).items():
                        CONSUMER_LAG.labels(topic=topic, group=group).set(lag)
                if not records:
                    if loop.time() - progressed >= stall_s:
                        waiting = await consumer.behind()
                        if waiting:
                            raise ConsumerStalled(f"{waiting} records waiting, none fetched in {stall_s:.0f} s")
                        progressed = loop.time()  # nothing waiting: idle, not stuck
                    continue
                started = loop.time()
                try:
                    async with asyncio.timeout(handle_s):
                        await handle_in_lanes(
                            bus, records, handle, deadletter_topic, group, lanes_for(len(records), lanes, lane_records)
                        )
                except TimeoutError:
                    raise ConsumerStalled(f"a batch of {len(records)} not handled in {handle_s:.0f} s") from None
                took.observe(loop.time() - started)
                sizes.observe(len(records))
                if committing is not None:
                    await committing
                committing = asyncio.create_task(consumer.commit(records))
                progressed = loop.time()
                backoff = 0.1
            if committing is not None:
                await committing
        except (Exception, asyncio.CancelledError) as exc:
            # a CancelledError not meant for this task is the Kafka client cancelling one of its own waits (its
            # group coordinator closing after a broker crash): this member is done for, the loop is not
            internal = isinstance(exc, asyncio.CancelledError)
            if internal and cancelled_from_outside():
                raise
            retriable = True if internal else getattr(exc, "retriable", None)
            log.error("consumer.batch_failed", extra={"group": group, "error": repr(exc), "retriable": retriable})
            await _sleep_or_stop(stop, backoff)
            backoff = min(max_backoff_s, backoff * 2)
        finally:
            if committing is not None:
                await _settled(committing, group)
            if on_assignment is not None:
                on_assignment(frozenset())
            try:
                await consumer.close()
            except (Exception, asyncio.CancelledError) as exc:
                if isinstance(exc, asyncio.CancelledError) and cancelled_from_outside():
                    raise
                log.warning("consumer.close_failed", extra={"group": group, "error": repr(exc)})


async def _settled(committing: asyncio.Task[None], group: str) -> None:
    """A commit still in flight when the member stops or fails: let it end (bounded by the bus), its failure only
    logged; what it did not commit comes again to the next member, which recognises it as done."""
    if committing.done():
        if not committing.cancelled():
            committing.exception()  # raised already, or superseded by the failure that ends the member
        return
    try:
        await asyncio.shield(committing)
    except asyncio.CancelledError:
        if cancelled_from_outside():
            committing.cancel()
            raise
    except Exception as exc:
        log.warning("consumer.commit_failed", extra={"group": group, "error": repr(exc)})


class ConsumerStalled(RuntimeError):
    """Records wait on the member's partitions but its fetches bring none: retriable, with a new member."""

    retriable = True


def lanes_for(records: int, lanes: int, lane_records: int) -> int:
    """How many lanes a batch of ``records`` is handled in: one per ``lane_records`` records, at most ``lanes``.
    Each lane is a transaction with its fixed cost (its locks, reads and outbox take); a batch too small to
    keep several busy is handled in one, at the cost of one transaction (under light load the batches are
    small, and a batch's time is the customer's wait)."""
    return max(1, min(lanes, records // max(1, lane_records)))


async def handle_in_lanes(
    bus: Bus, records: list[Record], handle: Handler, deadletter_topic: str, group: str, lanes: int
) -> None:
    """The batch's records in ``lanes`` groups by partition number, each handled (``apply_isolating_poison``) at
    the same time as the others: while one lane waits on the database, another's Python runs, and the database
    works on several transactions at once. Records of one partition number stay in one lane and in their order,
    and topics keyed alike (a tenant's events and routing commands) share their partition numbers, so everything
    of one key is handled by one lane, in order. The batch is done, to be committed, when every lane is; the
    first failure of any lane is raised once all have finished (a retriable one brings the whole batch again,
    and what the other lanes applied is recognised as already done)."""
    if lanes <= 1:
        await apply_isolating_poison(bus, records, handle, deadletter_topic, group)
        return
    split: dict[int, list[Record]] = {}
    for record in records:
        split.setdefault(record.partition % lanes, []).append(record)
    if len(split) == 1:
        await apply_isolating_poison(bus, records, handle, deadletter_topic, group)
        return
    outcomes = await asyncio.gather(
        *(apply_isolating_poison(bus, lane, handle, deadletter_topic, group) for lane in split.values()),
        return_exceptions=True,
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


async def apply_isolating_poison(
    bus: Bus, records: list[Record], handle: Handler, deadletter_topic: str, group: str
) -> None:
    """Handle ``records``; on a poison failure, bisect (order kept) until the record at fault is alone, give it
    one more try (a lost race heals on retry), then dead-letter it. A retriable failure propagates at once: the
    caller commits nothing and the batch comes again (what was applied meanwhile is deduplicated then)."""
    try:
        await handle(records)
        return
    except Exception as exc:
        if is_retriable(exc):
            raise
        failure: Exception = exc
    if len(records) > 1:
        middle = len(records) // 2
        await apply_isolating_poison(bus, records[:middle], handle, deadletter_topic, group)
        await apply_isolating_poison(bus, records[middle:], handle, deadletter_topic, group)
        return
    try:
        await handle(records)  # alone, once more
        return
    except Exception as exc:
        if is_retriable(exc):
            raise
        failure = exc
    record = records[0]
    reason = reason_of(failure)
    log.error(
        "consumer.poison_deadlettered",
        extra={
            "group": group,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "reason": reason,  # PII-free (shared/failures.reason_of); the record itself is on the topic
        },
    )
    await bus.publish([deadletter(record, reason, deadletter_topic, kind=reason_kind(failure))])


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


def decodable(
    records: Sequence[Record], decode: Callable[[bytes], T], logger: logging.Logger, event: str
) -> Iterator[T]:
    """What ``decode`` reads of the records, in order; a record it refuses is logged as ``event`` (offset and
    reason) and skipped. For a consumer that must not dead-letter: another, shared group does that once."""
    for record in records:
        try:
            decoded = decode(record.value)
        except InvalidEvent as exc:
            logger.warning(event, extra={"offset": record.offset, "reason": exc.reason[:300]})
            continue
        yield decoded
