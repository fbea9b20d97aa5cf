"""Handing freed heap memory back to the operating system.

A service's memory rises in a burst (a backlog fetched after a broker or database outage, a replica taking over
every tenant of a killed one) and falls again once the burst is handled, but glibc's malloc keeps what it freed:
CPython gives large objects (Kafka records, batch lists, result rows) to malloc, and glibc returns heap pages to
the system only from the top of its heap, and raises its mmap threshold after large frees, so later large blocks
come from the heap too. The resident size then ratchets up with every burst and never comes back, which in a
long-running replica looks exactly like a leak. ``malloc_trim(0)`` releases the free pages of every arena;
calling it now and then keeps the resident size to what is really in use. Elsewhere (musl, macOS) there is
nothing to call and the loop does nothing."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


def malloc_trim() -> Callable[[], bool] | None:
    """glibc's ``malloc_trim(0)`` as a call that says whether memory went back; None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: bool(trim(0))


async def trim_freed_memory(stop: asyncio.Event, every_s: float) -> None:
    """``malloc_trim(0)`` every ``every_s`` (SWITCHBOARD_MEMORY_TRIM_S) until ``stop``; a no-op when it is 0
    or the C library has no such call. A trim takes about a millisecond per hundred MiB of heap."""
    trim = malloc_trim() if every_s > 0 else None
    if trim is None:
        return
    while True:
        try:
            await asyncio.wait_for(stop.wait(), every_s)
            return
        except TimeoutError:
            pass
        trim()


def freeze_startup_objects() -> int:
    """Move every object alive once a service has started (its modules, schemas, settings, compiled statements:
    most of its heap, and never garbage) out of the cyclic garbage collector's sight (``gc.freeze``), after one
    collection so that no startup garbage is kept for good. Without it each full collection walks them all: a
    pause of a few hundred milliseconds, now and then, in the middle of requests and batches (the p99 of HTTP
    ingest went from about 200 ms to about 30 ms, docs/performance.md). Returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


YOUNG_COLLECTION_EVERY = 50_000  # container objects allocated, net, between young collections (CPython: 700)
OLDER_COLLECTION_EVERY = 20  # collections of the generation below between two of the next (CPython: 10)


def collect_less_often() -> tuple[int, int, int]:
    """Fewer, larger collections for a service whose work allocates many short-lived containers (a batch's
    rows, records, events). CPython's young generation is collected after 700 net allocations: a router at
    saturation ran over a thousand young collections a minute, each walking what the batch in hand still held:
    6% of its CPU over a benchmark run (timed with ``gc.callbacks``), a fifth of a native profile's samples at
    saturation. What a batch leaves behind is freed by reference counting as before; only reference cycles wait
    longer, a batch or two. Returns the thresholds set."""
    gc.set_threshold(YOUNG_COLLECTION_EVERY, OLDER_COLLECTION_EVERY, OLDER_COLLECTION_EVERY)
    return gc.get_threshold()


@contextmanager
def collection_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a bulk load builds many objects that all live on (a replica
    rebuilding a tenant's routing state: a few objects per open conversation). Each allocation past a
    threshold would otherwise start a collection that walks the objects built so far, for nothing: at 50,000
    open conversations, over 600 collections and a third of the takeover (docs/performance.md). Objects freed
    by reference counting are freed as ever; on leaving, the collector is on again if it was on when entered
    (so a pause inside another, or another coroutine's, leaves it to the outer one)."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
