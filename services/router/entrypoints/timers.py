"""Work on a clock rather than on a message: the outbox relay's safety net, the routing timers and the webhook
delivery loop."""

from __future__ import annotations

import asyncio
import logging
import math

from services.router.handlers.outbox import OutboxRelay
from services.router.handlers.presence import PresenceWatch
from services.router.handlers.routing_timers import RoutingTimers
from services.router.handlers.webhook_deliveries import WebhookDeliveries

log = logging.getLogger(__name__)


async def relay_outbox(relay: OutboxRelay, stop: asyncio.Event, every_s: float = 1.0) -> None:
    """Whatever a transaction left in the outbox (its own flush failed, or the process died) goes out here, and
    at once what a writer that does not wait for its publication committed (``OutboxRelay.kick``); once more
    when stopping, so a graceful stop leaves nothing committed unpublished."""
    while True:
        stopping = await _wait_or_woken(stop, relay.kicked, every_s)
        relay.kicked.clear()
        try:
            await relay.flush()
        except Exception as exc:  # the relay retries next round; nothing is lost while the rows stay
            log.warning("outbox.flush_failed", extra={"error": repr(exc)})
        if stopping:
            return


async def routing_timers(timers: RoutingTimers, stop: asyncio.Event, tick_s: float, sweep_s: float) -> None:
    """``timers.tick`` every ``tick_s`` (SWITCHBOARD_ROUTING_TICK_S), ``timers.sweep`` every ``sweep_s``."""
    loop = asyncio.get_running_loop()
    last_sweep = -math.inf  # the first tick sweeps: timers that fell due while no router ran are found at once
    while not await _wait(stop, tick_s):
        try:
            if loop.time() - last_sweep >= sweep_s:
                last_sweep = loop.time()
                await timers.sweep()
            await timers.tick()
        except Exception as exc:  # one failed round must not stop the timers; the next round catches up
            log.warning("routing.tick_failed", extra={"error": repr(exc)[:300]})


async def presence_watch(watch: PresenceWatch, stop: asyncio.Event, every_s: float) -> None:
    """``watch.beat`` every heartbeat (SWITCHBOARD_PRESENCE_HEARTBEAT_S)."""
    while not await _wait(stop, every_s):
        try:
            await watch.beat()
        except Exception as exc:  # the next beat catches up
            log.warning("presence.beat_failed", extra={"error": repr(exc)[:300]})


async def deliver_webhooks(
    deliveries: WebhookDeliveries, stop: asyncio.Event, tick_s: float, sweep_s: float = 3600.0
) -> None:
    """Due webhook deliveries every ``tick_s`` (SWITCHBOARD_WEBHOOK_DELIVERY_TICK_S) and at once when new ones
    were queued; old finished ones forgotten every ``sweep_s``. The first round sends whatever was pending when
    the router stopped."""
    loop = asyncio.get_running_loop()
    last_sweep = -math.inf
    try:
        while not stop.is_set():
            deliveries.wake.clear()  # before the round: what is queued during it wakes the next one
            try:
                if loop.time() - last_sweep >= sweep_s:
                    last_sweep = loop.time()
                    await deliveries.forget_old()
                await deliveries.deliver_due(stop)
            except Exception as exc:  # the rows stay pending (leases run out): the next round tries again
                log.warning("webhook.round_failed", extra={"error": repr(exc)[:300]})
            if await _wait_or_woken(stop, deliveries.wake, tick_s):
                return
    finally:
        if deliveries.sender is not None:
            await deliveries.sender.close()


async def _wait_or_woken(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds``, or until woken or stopped; True if stopped."""
    waits = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())}
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
    return stop.is_set()


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` or until stopped; True if stopped."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
        return True
    except TimeoutError:
        return False
