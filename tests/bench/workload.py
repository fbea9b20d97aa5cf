"""The end-to-end benchmark's workload, as a customer-care desk sees it: several tenants, most messages follow-ups
from customers who already wrote (their conversation is still open), the rest from new customers.

Payloads are encoded before the clock starts. Each keeps a placeholder where its ``time`` and ``received_at`` go
(an ISO 8601 instant of fixed width), so the load generator stamps the instant it hands the message to the
producer with one ``bytes.join`` and nothing else. Event ids are ``<phase tag>-<index>``: a listener reads the
produce time of an event from its index, without a table of ids travelling between processes."""

from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.events import encode_event
from tests.support.runtime import inbound

PLACEHOLDER_AT = datetime(2000, 1, 1, 0, 0, 0, 123456, UTC)
PLACEHOLDER = b"2000-01-01T00:00:00.123456Z"  # how encode_event writes PLACEHOLDER_AT
TEXTS = (
    "Hi, my order has not arrived yet",
    "I was charged twice for the same thing",
    "How do I change the delivery address?",
    "Thanks, and one more question",
    "Is there any update on this?",
    "The app logs me out every time I open it",
    "Can I get a refund for the broken item?",
)


def stamp(at: float) -> bytes:
    """The instant ``at`` (Unix seconds) in the placeholder's format and width."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()


@dataclass(frozen=True)
class Workload:
    """``follow_ups``: share of messages from customers who already wrote in this phase; each new customer
    writes again 1 to 3 times within ``window_s`` of their first message (mean follow-ups per customer
    follow_ups / (1 - follow_ups)), so a follow-up lands in a conversation that is still open as long as agents
    hold a conversation longer than that (the resolver's handle time)."""

    tenants: tuple[str, ...]
    follow_ups: float = 0.7
    window_s: float = 1.0
    seed: int = 7

    def schedule(self, tag: str, rate: float, seconds: float) -> list[tuple[int, str, bool]]:
        """(tenant index, customer, follow-up?) for each of the ``rate * seconds`` messages, in send order."""
        rnd = random.Random(f"{self.seed}-{tag}")
        total = max(1, round(rate * seconds))
        per_customer = self.follow_ups / (1 - self.follow_ups)  # mean follow-ups of one customer
        low = int(per_customer)
        due: list[tuple[int, int, int, str]] = []  # (slot, tie, tenant, customer) of follow-ups
        out: list[tuple[int, str, bool]] = []
        customers = 0
        tie = itertools.count()
        for slot in range(total):
            if due and due[0][0] <= slot:
                _, _, tenant, customer = heapq.heappop(due)
                out.append((tenant, customer, True))
                continue
            tenant = customers % len(self.tenants)
            customer = f"{tag}-c{customers}"
            customers += 1
            out.append((tenant, customer, False))
            count = low + (rnd.random() < per_customer - low)
            span = max(1, int(self.window_s * rate))
            for _ in range(count):
                heapq.heappush(due, (slot + rnd.randint(1, span), next(tie), tenant, customer))
        return out

    def payloads(self, tag: str, rate: float, seconds: float) -> list[tuple[bytes, list[bytes]]]:
        """(Kafka key, payload split at the placeholder) per message: the key is the tenant, as connectors send."""
        rnd = random.Random(f"{self.seed}-{tag}-text")
        out = []
        for n, (tenant_index, customer, _) in enumerate(self.schedule(tag, rate, seconds)):
            tenant = self.tenants[tenant_index]
            event = inbound(tenant, customer, rnd.choice(TEXTS), event_id=f"{tag}-{n}")
            event = event.model_copy(update={"time": PLACEHOLDER_AT, "received_at": PLACEHOLDER_AT})
            raw = encode_event(event)
            parts = raw.split(PLACEHOLDER)
            assert len(parts) == 3, "time and received_at each hold the placeholder once"
            out.append((tenant.encode(), parts))
        return out


def index_of(event_id: str, tag: str) -> int | None:
    """The send index of an event of phase ``tag`` (None: another phase's, or not the benchmark's)."""
    head, _, index = event_id.rpartition("-")
    return int(index) if head == tag and index.isdigit() else None
