"""The webhook delivery queue's contract, on SQLite (embedded) and PostgreSQL (production): queued once, one
delivery at a time per receiver and conversation, never claimed by two loops at once, kept across retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.router.adapters.db.erasure import blank_conversations
from services.router.adapters.db.unit_of_work import SqlStore
from services.router.handlers.ports.webhook_deliveries import Attempted, NewDelivery
from shared.ids import new_id
from tests.conftest import random_name

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LEASE = NOW + timedelta(minutes=1)
URL = "http://receiver.test/hook"


def delivery(tenant: str, conversation: str, event_id: str | None = None, url: str = URL) -> NewDelivery:
    event_id = event_id or new_id()
    return NewDelivery(
        id=new_id(),
        tenant_id=tenant,
        url=url,
        event_id=event_id,
        event_type="assignment",
        conversation_id=conversation,
        ordering_key=f"conversation:{conversation}",
        body=b'{"id": "%s"}' % event_id.encode(),
    )


async def claim(repo: SqlStore, deployment: str, at: datetime = NOW, limit: int = 100) -> list[str]:
    async with repo.unit() as u:
        return [d.event_id for d in await u.webhook_deliveries.claim_due(deployment, at, at + (LEASE - NOW), limit)]


async def test_a_later_delivery_of_a_conversation_waits_while_an_earlier_one_is_pending(repo: SqlStore) -> None:
    deployment, tenant = random_name("d-"), random_name("tn")
    a1, a2, b1, a_elsewhere = (
        delivery(tenant, "A", "a1"),
        delivery(tenant, "A", "a2"),
        delivery(tenant, "B", "b1"),
        delivery(tenant, "A", "a1", url="http://other.test/hook"),
    )
    async with repo.unit() as u:
        assert await u.webhook_deliveries.add(deployment, [a1, a2, b1, a_elsewhere], NOW) == 4
    assert sorted(await claim(repo, deployment)) == ["a1", "a1", "b1"]  # a2 waits; another receiver does not
    assert await claim(repo, deployment) == [], "leased: not taken again before the lease ends"
    async with repo.unit() as u:
        await u.webhook_deliveries.record(
            [
                Attempted(a1.id, tenant, "pending", 503, "HTTP 503", NOW + timedelta(minutes=5)),
                Attempted(b1.id, tenant, "delivered", 200, None, None),
                Attempted(a_elsewhere.id, tenant, "failed", 404, "refused: HTTP 404", None),
            ],
            NOW,
        )
    assert await claim(repo, deployment, NOW + timedelta(minutes=2)) == [], "a1 not due yet, a2 behind it"
    assert await claim(repo, deployment, NOW + timedelta(minutes=6)) == ["a1"]
    async with repo.unit() as u:
        await u.webhook_deliveries.record([Attempted(a1.id, tenant, "delivered", 200, None, None)], NOW)
    assert await claim(repo, deployment, NOW + timedelta(minutes=6)) == ["a2"]
    async with repo.reading() as r:
        first = await r.webhook_deliveries.one(tenant, a1.id)
        failed = await r.webhook_deliveries.page(tenant, "failed", 10, None)
        assert await r.webhook_deliveries.one("someone-else", a1.id) is None
    assert first is not None and first["state"] == "delivered" and first["attempts"] == 2
    assert [f["id"] for f in failed] == [a_elsewhere.id] and failed[0]["last_status"] == 404


async def test_a_record_consumed_twice_is_queued_once_and_sent_by_its_own_deployment_only(repo: SqlStore) -> None:
    deployment, tenant = random_name("d-"), random_name("tn")
    first = delivery(tenant, "A", "e1")
    async with repo.unit() as u:
        assert await u.webhook_deliveries.add(deployment, [first], NOW) == 1
    async with repo.unit() as u:
        assert await u.webhook_deliveries.add(deployment, [delivery(tenant, "A", "e1")], NOW) == 0
    assert await claim(repo, random_name("d-")) == [], "another deployment's loop does not send it"
    assert await claim(repo, deployment) == ["e1"]


async def test_two_loops_never_claim_the_same_delivery(repo: SqlStore) -> None:
    """On PostgreSQL the two claims overlap in time (SKIP LOCKED passes over the first one's rows); SQLite has
    one writer, so there the second comes after the first committed and the lease keeps them apart."""
    deployment, tenant = random_name("d-"), random_name("tn")
    async with repo.unit() as u:
        await u.webhook_deliveries.add(deployment, [delivery(tenant, f"c{n}") for n in range(10)], NOW)
    if repo.db.dialect == "postgresql":
        async with repo.unit() as first, repo.unit() as second:
            one = await first.webhook_deliveries.claim_due(deployment, NOW, LEASE, 6)
            two = await second.webhook_deliveries.claim_due(deployment, NOW, LEASE, 6)
        taken = [d.id for d in one] + [d.id for d in two]
    else:
        taken = await claim(repo, deployment, limit=6) + await claim(repo, deployment, limit=6)
    assert len(taken) == 10 and len(set(taken)) == 10


async def test_a_redelivered_delivery_is_due_at_once_with_a_fresh_window_and_old_finished_ones_are_forgotten(
    repo: SqlStore,
) -> None:
    deployment, tenant = random_name("d-"), random_name("tn")
    gone, kept = delivery(tenant, "A", "gone"), delivery(tenant, "B", "kept")
    async with repo.unit() as u:
        await u.webhook_deliveries.add(deployment, [gone, kept], NOW)
    assert sorted(await claim(repo, deployment)) == ["gone", "kept"]
    async with repo.unit() as u:
        await u.webhook_deliveries.record(
            [Attempted(d.id, tenant, "failed", 503, "gave up", None) for d in (gone, kept)], NOW
        )
    later = NOW + timedelta(days=1)
    async with repo.unit() as u:
        await u.webhook_deliveries.redeliver(tenant, kept.id, later)
    assert await claim(repo, deployment, later) == ["kept"]
    async with repo.reading() as r:
        again = await r.webhook_deliveries.one(tenant, kept.id)
    assert again is not None and again["window_from"] == later and again["redeliveries"] == 1
    async with repo.unit() as u:
        assert await u.webhook_deliveries.forget_finished_before(NOW + timedelta(seconds=1)) >= 1
    async with repo.reading() as r:
        assert await r.webhook_deliveries.one(tenant, gone.id) is None
        assert await r.webhook_deliveries.one(tenant, kept.id) is not None  # pending again: not finished


async def test_blanking_a_conversation_drops_the_webhook_events_held_for_it(repo: SqlStore) -> None:
    """Erasure and retention: a delivery's body holds the message text; none is kept (nor sent) after."""
    deployment, tenant = random_name("d-"), random_name("tn")
    erased, kept = random_name("conv-"), random_name("conv-")
    async with repo.unit() as u:
        await u.webhook_deliveries.add(deployment, [delivery(tenant, erased, "e1"), delivery(tenant, kept, "k1")], NOW)
    async with repo.db.transaction() as conn:
        await blank_conversations(conn, [(tenant, erased)], NOW)
    assert await claim(repo, deployment) == ["k1"]
