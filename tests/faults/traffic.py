"""The load of the fault suite: customers writing (REST messages and signed Telegram webhooks, some delivered
twice as providers do) and a desk at work (agents replying and resolving). Every answer is accounted for:
2xx is accepted; 429 and 5xx (and no answer) are retried, as a client must; anything else, a 4xx above all, is
an unexpected answer, counted and kept as a sample, and fails the run. Nothing drops out of the counts quietly."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from sqlalchemy import select

from services.router.adapters.db import tables as t
from shared.store import Database

TELEGRAM_SECRET = "tg-fault-secret"
RETRY_BUDGET_S = 600.0  # a client keeps retrying a message this long before it gives up (and the run fails)


class Endpoint(Protocol):
    @property
    def base(self) -> str: ...


@dataclass
class Tally:
    sent: int = 0  # messages whose first request has gone out
    accepted: set[str] = field(default_factory=set)  # message tokens a client got accepted
    gave_up: set[str] = field(default_factory=set)  # never accepted within the retry budget
    unexpected: int = 0  # answers that are neither accepted nor retriable (4xx other than 429, 3xx)
    unexpected_samples: list[dict[str, Any]] = field(default_factory=list)
    replies_accepted: set[str] = field(default_factory=set)  # reply tokens answered 202
    replies_unanswered: set[str] = field(default_factory=set)  # no answer or 5xx: maybe queued, maybe not
    resolved: int = 0
    replies_to_closed: int = 0  # a burst's reply that met its conversation resolved meanwhile (409): not sent
    duplicate_webhooks: int = 0
    client_retries: int = 0

    def unexpected_answer(self, what: str, response: httpx.Response) -> None:
        self.unexpected += 1
        if len(self.unexpected_samples) < 50:
            self.unexpected_samples.append(
                {"what": what, "status": response.status_code, "url": str(response.url), "body": response.text[:300]}
            )


def retriable(status: int) -> bool:
    return status == 429 or status >= 500


async def post(
    http: httpx.AsyncClient, urls: list[str], body: Any, headers: dict[str, str], tally: Tally, what: str
) -> bool:
    """POST until one replica accepts it (the idempotency key or update id makes a retry the same message)."""
    deadline = time.monotonic() + RETRY_BUDGET_S
    attempt = 0
    while True:
        try:
            r = await http.post(urls[attempt % len(urls)], json=body, headers=headers)
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
    connector: Endpoint,
    key: str,
    tally: Tally,
    *,
    max_pending: int,
) -> None:
    """``n`` messages offered at ``rate`` per second, half over the REST API, half as Telegram webhooks. An open
    loop, as real customers are, up to ``max_pending`` unanswered messages: a fault does not stop the sending,
    so every fault has messages sent while it lasts."""
    rnd = random.Random(11)
    people = max(1, n // 8)
    auth = {"Authorization": f"Bearer {key}"}
    hook = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, pool=None), limits=limits) as http:
        pending: set[asyncio.Task[None]] = set()

        async def one(i: int, customer: int, replayed: bool) -> None:
            token = f"m{i:07d}"
            if i % 2 == 0:
                body = {"customer": {"external_id": f"c{customer}"}, "text": f"{token} hello", "idempotency_key": token}
                urls = [f"{r.base}/v1/messages" for r in (routers if i % 4 == 0 else routers[::-1])]
                ok = await post(http, urls, body, auth, tally, "message")
            else:
                update = {
                    "update_id": 100_000_000 + i,
                    "message": {
                        "message_id": i,
                        "from": {"id": 5_000_000 + customer, "is_bot": False, "first_name": "Fx"},
                        "chat": {"id": 5_000_000 + customer, "type": "private"},
                        "date": int(time.time()),
                        "text": f"{token} hello",
                    },
                }
                url = [f"{connector.base}/webhooks/telegram"]
                ok = await post(http, url, update, hook, tally, "telegram webhook")
                if ok and replayed:  # the provider delivers it again
                    tally.duplicate_webhooks += 1
                    ok = await post(http, url, update, hook, tally, "telegram webhook, replayed")
            (tally.accepted if ok else tally.gave_up).add(token)

        interval = 1.0 / rate
        next_at = time.monotonic()
        for i in range(n):
            while len(pending) >= max_pending:
                await asyncio.sleep(0.01)
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
) -> None:
    """Agents at work: every conversation an agent holds gets ``replies_each`` replies on Telegram (delivered
    by the connector through the fake Bot API) and is resolved, freeing capacity for the next.

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
    async with httpx.AsyncClient(timeout=10) as http:
        while not stop.is_set():
            try:
                async with db.read() as conn:
                    rows = (await conn.execute(held)).all()
            except Exception:
                await asyncio.sleep(0.5)  # the database is down: the desk waits, as the console does
                continue
            for row in rows:
                base = routers[n % len(routers)].base
                n += 1
                conversation = f"{base}/v1/conversations/{row.conversation_id}"
                if row.channel == "telegram":
                    for _ in range(replies_each):
                        token = f"r{n:07d}"
                        n += 1
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
                    continue  # a replica is down: the conversation is resolved in a later round
                if 200 <= r.status_code < 300:
                    tally.resolved += 1
                elif not retriable(r.status_code):
                    tally.unexpected_answer("resolve", r)
            await asyncio.sleep(0.3)


async def reply_burst(
    db: Database, tenant: str, routers: Sequence[Endpoint], key: str, tally: Tally, count: int, *, at_once: int = 40
) -> int:
    """``count`` replies posted as fast as the routers take them, spread over the open Telegram conversations
    (a supervisor's broadcast, an agent catching up): thousands of replies then wait for the connector, the
    moment to kill it. Returns how many were accepted (202). A 409 is a conversation the desk resolved
    meanwhile (counted apart); any other answer but 202 or a retriable one is unexpected."""
    c = t.conversations.c
    query = (
        select(c.id).where(c.tenant_id == tenant, c.channel == "telegram", c.status == "open").order_by(c.id).limit(200)
    )
    async with db.read() as conn:
        conversations = [row.id for row in (await conn.execute(query)).all()]
    if not conversations:
        return 0
    auth = {"Authorization": f"Bearer {key}"}
    gate = asyncio.Semaphore(at_once)
    accepted = 0

    async def one(n: int, http: httpx.AsyncClient) -> None:
        nonlocal accepted
        token = f"rb{n:07d}"
        base = routers[n % len(routers)].base
        async with gate:
            try:
                r = await http.post(
                    f"{base}/v1/conversations/{conversations[n % len(conversations)]}/reply",
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
