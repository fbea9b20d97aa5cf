"""The load of the fault suite: customers writing (REST messages, and webhooks signed as each provider signs
them: Telegram's secret token, Meta's X-Hub-Signature-256 for WhatsApp and Messenger, Twilio's
X-Twilio-Signature for SMS; some webhooks delivered twice, as providers do) and a desk at work (agents replying
on every channel a connector delivers to, and resolving). Every answer is accounted for: 2xx is accepted; 429
and 5xx (and no answer) are retried, as a client must; anything else, a 4xx above all, is an unexpected answer,
counted and kept as a sample, and fails the run. Nothing drops out of the counts quietly.

Message ``i`` carries the token ``m{i:07d}`` as the first word of its text and goes by ``CHANNELS[i % 6]``
(channels.py); replies carry ``r…`` tokens the same way."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from sqlalchemy import select

from services.router.adapters.db import tables as t
from shared.store import Database
from tests.faults.channels import CHANNELS, REPLY_CHANNELS, WEBHOOK_PATHS, connector_of, webhook

RETRY_BUDGET_S = 600.0  # a client keeps retrying a message this long before it gives up (and the run fails)


class Endpoint(Protocol):
    @property
    def base(self) -> str: ...


@dataclass
class Tally:
    sent: int = 0  # messages whose first request has gone out
    channel_of: dict[str, str] = field(default_factory=dict)  # message and reply token -> channel it went by
    accepted: set[str] = field(default_factory=set)  # message tokens a client got accepted
    gave_up: set[str] = field(default_factory=set)  # never accepted within the retry budget
    unexpected: int = 0  # answers that are neither accepted nor retriable (4xx other than 429, 3xx)
    unexpected_samples: list[dict[str, Any]] = field(default_factory=list)
    replies_accepted: set[str] = field(default_factory=set)  # reply tokens answered 202
    replies_unanswered: set[str] = field(default_factory=set)  # no answer or 5xx: maybe queued, maybe not
    resolved: int = 0
    burst_replies: int = 0  # replies posted in bursts so far: each burst's tokens follow the last one's
    replies_to_closed: int = 0  # a burst's reply that met its conversation resolved meanwhile (409): not sent
    replayed: Counter[str] = field(default_factory=Counter)  # webhooks delivered a second time, by channel
    client_retries: int = 0
    # The next fault's planned message: the traffic holds there until that fault has started (a fault waiting for
    # the last one's recovery must not find the traffic run out), then the harness moves it on.
    hold_at: int | None = None

    @property
    def duplicate_webhooks(self) -> int:
        return sum(self.replayed.values())

    def unexpected_answer(self, what: str, response: httpx.Response) -> None:
        self.unexpected += 1
        if len(self.unexpected_samples) < 50:
            self.unexpected_samples.append(
                {"what": what, "status": response.status_code, "url": str(response.url), "body": response.text[:300]}
            )


def retriable(status: int) -> bool:
    return status == 429 or status >= 500


async def post(http: httpx.AsyncClient, urls: list[str], request: dict[str, Any], tally: Tally, what: str) -> bool:
    """POST ``request`` (httpx's arguments: the body and headers) until one replica accepts it; the idempotency
    key or the provider's message id makes a retry the same message."""
    deadline = time.monotonic() + RETRY_BUDGET_S
    attempt = 0
    while True:
        try:
            r = await http.post(urls[attempt % len(urls)], **request)
            if 200 <= r.status_code < 300:
                return True
            if not retriable(r.status_code):
                tally.unexpected_answer(what, r)
                return False
        except httpx.HTTPError:
            pass
        attempt += 1
        if time.monotonic() > deadline:
            return False
        tally.client_retries += 1
        await asyncio.sleep(min(3.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.5))


async def customers(
    n: int,
    rate: float,
    routers: Sequence[Endpoint],
    connectors: Mapping[str, Endpoint],
    key: str,
    tally: Tally,
    *,
    max_pending: int,
    people: int | None = None,
) -> None:
    """``n`` messages offered at ``rate`` per second, over the REST API and as signed webhooks (``CHANNELS``).
    An open loop, as real customers are, up to ``max_pending`` unanswered messages: a fault does not stop the
    sending, so every fault has messages sent while it lasts. One webhook in twenty is delivered again once
    accepted, as providers do: it must be stored once. Each message comes from one of ``people`` customers (by
    default one for every eight messages), picked at random: a message finds its customer's conversation open,
    or opens (reopens) one that waits for the desk. A fixed number of customers bounds how many conversations
    can wait at once whatever the desk's pace (the soak: memory must not grow with a backlog)."""
    rnd = random.Random(11)
    people = people or max(1, n // 8)
    auth = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, pool=None), limits=limits) as http:
        pending: set[asyncio.Task[None]] = set()

        async def one(i: int, customer: int, replayed: bool) -> None:
            token = f"m{i:07d}"
            channel = tally.channel_of[token]
            text = f"{token} hello"
            if channel == "in_app":
                body = {"customer": {"external_id": f"c{customer}"}, "text": text, "idempotency_key": token}
                urls = [f"{r.base}/v1/messages" for r in (routers if i % 2 == 0 else routers[::-1])]
                ok = await post(http, urls, {"json": body, "headers": auth}, tally, "message")
            else:
                name = connector_of(channel)
                url, request = connectors[name].base + WEBHOOK_PATHS[name], webhook(channel, i, customer, text)
                ok = await post(http, [url], request, tally, f"{channel} webhook")
                if ok and replayed:  # the provider delivers it again
                    tally.replayed[channel] += 1
                    ok = await post(http, [url], request, tally, f"{channel} webhook, replayed")
            (tally.accepted if ok else tally.gave_up).add(token)

        interval = 1.0 / rate
        next_at = time.monotonic()
        for i in range(n):
            while len(pending) >= max_pending or (tally.hold_at is not None and i >= tally.hold_at):
                await asyncio.sleep(0.01)
                next_at = max(next_at, time.monotonic())  # a hold is not made up for by a burst after it
            tally.channel_of[f"m{i:07d}"] = CHANNELS[i % len(CHANNELS)]
            task = asyncio.create_task(one(i, rnd.randrange(people), rnd.random() < 0.05))
            pending.add(task)
            task.add_done_callback(pending.discard)
            tally.sent = i + 1
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        await asyncio.gather(*pending)


async def desk(
    db: Database,
    tenant: str,
    routers: Sequence[Endpoint],
    key: str,
    tally: Tally,
    stop: asyncio.Event,
    *,
    replies_each: int = 2,
    agents_at_once: int = 12,
) -> None:
    """Agents at work: every conversation an agent holds gets ``replies_each`` replies if its channel has a
    connector in the run (``REPLY_CHANNELS``: delivered through the fake Bot API, Graph API or Twilio Messages
    API) and is resolved, freeing capacity for the next. Up to ``agents_at_once`` conversations are worked on at
    the same time, as a desk of agents does: the desk keeps up with the customers, so the queues do not grow
    through the run (a soak measures the processes, not a backlog).

    A reply has no idempotency key, so one without an answer is not sent again (a retry could rightly be
    delivered twice); a resolve carries one per assignment, so it is retried until it is answered."""
    auth = {"Authorization": f"Bearer {key}"}
    n = 0
    a, c = t.assignments.c, t.conversations.c
    held = (
        select(a.id, a.conversation_id, c.channel)
        .join(t.conversations, c.id == a.conversation_id)
        .where(a.tenant_id == tenant, a.ended_at.is_(None), c.status == "open")
        .order_by(a.seq)
        .limit(60)
    )
    working = asyncio.Semaphore(agents_at_once)

    async def work(http: httpx.AsyncClient, base: str, row: Any, tokens: list[str]) -> None:
        async with working:
            conversation = f"{base}/v1/conversations/{row.conversation_id}"
            for token in tokens:
                tally.channel_of[token] = row.channel
                try:
                    r = await http.post(f"{conversation}/reply", json={"text": f"{token} on it"}, headers=auth)
                except httpx.HTTPError:
                    tally.replies_unanswered.add(token)
                    continue
                if r.status_code == 202:
                    tally.replies_accepted.add(token)
                elif retriable(r.status_code):
                    tally.replies_unanswered.add(token)
                else:
                    tally.unexpected_answer("reply", r)
            headers = {**auth, "Idempotency-Key": f"resolve-{row.id}"}
            try:
                r = await http.post(f"{conversation}/resolve", json={"survey": "none"}, headers=headers)
            except httpx.HTTPError:
                return  # a replica is down: the conversation is resolved in a later round
            if 200 <= r.status_code < 300:
                tally.resolved += 1
            elif not retriable(r.status_code):
                tally.unexpected_answer("resolve", r)

    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=agents_at_once * 2)) as http:
        while not stop.is_set():
            try:
                async with db.read() as conn:
                    rows = (await conn.execute(held)).all()
            except Exception:
                await asyncio.sleep(0.5)  # the database is down: the desk waits, as the console does
                continue
            round_ = []
            for row in rows:
                base = routers[n % len(routers)].base
                n += 1
                tokens = []
                if row.channel in REPLY_CHANNELS:
                    tokens = [f"r{n + i:07d}" for i in range(replies_each)]
                    n += replies_each
                round_.append(work(http, base, row, tokens))
            await asyncio.gather(*round_)
            await asyncio.sleep(0.3)


async def reply_burst(
    db: Database, tenant: str, routers: Sequence[Endpoint], key: str, tally: Tally, count: int, *, at_once: int = 40
) -> int:
    """``count`` replies posted as fast as the routers take them, spread over the open conversations of every
    reply channel (a supervisor's broadcast, an agent catching up): thousands of replies then wait for the
    connectors, the moment to kill them. Returns how many were accepted (202). A 409 is a conversation the desk resolved
    meanwhile (counted apart); any other answer but 202 or a retriable one is unexpected."""
    c = t.conversations.c
    query = (
        select(c.id, c.channel)
        .where(c.tenant_id == tenant, c.channel.in_(REPLY_CHANNELS), c.status == "open")
        .order_by(c.id)
        .limit(200)
    )
    async with db.read() as conn:
        conversations = [(row.id, row.channel) for row in (await conn.execute(query)).all()]
    if not conversations:
        return 0
    auth = {"Authorization": f"Bearer {key}"}
    gate = asyncio.Semaphore(at_once)
    accepted = 0
    first, tally.burst_replies = tally.burst_replies, tally.burst_replies + count

    async def one(n: int, http: httpx.AsyncClient) -> None:
        nonlocal accepted
        token = f"rb{first + n:07d}"
        base = routers[n % len(routers)].base
        conversation, tally.channel_of[token] = conversations[n % len(conversations)]
        async with gate:
            try:
                r = await http.post(
                    f"{base}/v1/conversations/{conversation}/reply",
                    json={"text": f"{token} an update for you"},
                    headers=auth,
                )
            except httpx.HTTPError:
                tally.replies_unanswered.add(token)
                return
        if r.status_code == 202:
            tally.replies_accepted.add(token)
            accepted += 1
        elif r.status_code == 409:
            tally.replies_to_closed += 1
        elif retriable(r.status_code):
            tally.replies_unanswered.add(token)
        else:
            tally.unexpected_answer("reply burst", r)

    async with httpx.AsyncClient(timeout=10) as http:
        await asyncio.gather(*(one(n, http) for n in range(count)))
    return accepted
