"""KPIs from the stats API on a generated desk history (10,000 conversations on PostgreSQL) equal a
straightforward computation of the same definitions in Python, overall and per queue, channel and agent."""

from __future__ import annotations

import random
import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from services.router.adapters.db import tables as t
from services.router.adapters.db.bulk import insert_rows
from tests.support.runtime import Desk, serving, settings_for, started_desk

START = datetime(2026, 10, 1, tzinfo=UTC)
END = datetime(2026, 11, 1, tzinfo=UTC)
CHANNELS = ["email", "chat", "sms", "whatsapp", "in_app"]


def conversation_row(desk: Desk, conv: str, id_: str, **columns: Any) -> dict[str, Any]:
    """A row of a table of the conversation's: its id, the desk's tenant, the conversation, then ``columns``."""
    return dict(id=id_, tenant_id=desk.tenant, conversation_id=conv, **columns)


def outbound(
    desk: Desk,
    conv: str,
    customer: str,
    at: datetime,
    id_: str,
    event_id: str,
    channel: str,
    sender_kind: str,
    text: str,
) -> dict[str, Any]:
    """A message row the desk sent on the conversation."""
    return conversation_row(
        desk,
        conv,
        id_,
        event_id=event_id,
        customer_id=customer,
        channel=channel,
        direction="outbound",
        sender_kind=sender_kind,
        text=text,
        received_at=at,
        created_at=at,
    )


def generate(desk: Desk, n: int, seed: int = 7) -> dict[str, list[dict[str, Any]]]:
    rnd = random.Random(seed)
    queues = [f"{desk.tenant}-q-messaging", f"{desk.tenant}-q-email", f"{desk.tenant}-q-general"]
    agents = [desk.agent("agent-ada"), desk.agent("agent-grace"), desk.agent("agent-alan"), None]
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for i in range(n):
        customer = f"{desk.tenant}-c{i:06d}"
        conv = f"{desk.tenant}-v{i:06d}"
        # 5 % opened outside the period (they must not count)
        opened = START + timedelta(seconds=rnd.uniform(-3 * 86400 if rnd.random() < 0.05 else 0, 30 * 86400))
        answered = rnd.random() < 0.7
        resolved = answered and rnd.random() < 0.8
        merged = rnd.random() < 0.01
        status = "merged" if merged else "resolved" if resolved else "open"
        rows["customers"].append(dict(id=customer, tenant_id=desk.tenant, tier="standard", created_at=opened))
        rows["conversations"].append(
            dict(
                id=conv,
                tenant_id=desk.tenant,
                customer_id=customer,
                status=status,
                channel=rnd.choice(CHANNELS),
                queue_id=rnd.choice(queues),
                agent_id=rnd.choice(agents),
                opened_at=opened,
                last_message_at=opened,
                first_response_at=opened + timedelta(seconds=rnd.expovariate(1 / 900)) if answered else None,
                resolved_at=opened + timedelta(seconds=rnd.expovariate(1 / 20000) + 1000) if resolved else None,
                reopened_at=opened + timedelta(hours=30) if rnd.random() < 0.1 else None,
                escalated_at=opened + timedelta(minutes=5) if rnd.random() < 0.15 else None,
            )
        )
        for k in range(rnd.choice([0, 1, 1, 1, 2, 3]) if answered else 0):
            rows["messages"].append(
                outbound(
                    desk, conv, customer, opened, f"{conv}-m{k}", f"reply:{conv}-m{k}", "email", "agent", "an answer"
                )
            )
        if rnd.random() < 0.3:  # survey answers from customers are inbound, not agent replies
            rows["messages"].append(
                outbound(
                    desk, conv, customer, opened, f"{conv}-s", f"survey:{conv}", "sms", "survey", "How would you rate"
                )
            )
        running: set[str] = set()  # a conversation runs one response clock and one resolution clock at a time
        for kind in ("first_response", "resolution", "next_response")[: rnd.randint(0, 3)]:
            slot = "resolution" if kind == "resolution" else "response"
            state = rnd.choice(["met", "late"] if slot in running else ["live", "met", "late", "breached_live"])
            # a live clock falls due long after the test: the SLA tick of any router on the same database (a test
            # running beside this one) fires every tenant's due clocks, and would breach it under the test
            due = opened if state != "live" else datetime.now(UTC) + timedelta(days=365)
            clock = dict(
                kind=kind,
                target_s=600.0,
                started_at=opened,
                warn_at=due,
                due_at=due,
                breached_at=opened if state in ("late", "breached_live") else None,
            )
            rows["clocks"].append(
                dict(clock, conversation_id=conv, stopped_at=opened if state in ("met", "late") else None)
            )
            if state in ("live", "breached_live"):  # running: on its conversation's row
                running.add(slot)
                rows["conversations"][-1].update({f"{slot}_{name}": value for name, value in clock.items()})
            else:
                rows["sla_timers"].append(
                    conversation_row(desk, conv, f"{conv}-{kind}", **clock, stopped_at=opened, met=state == "met")
                )
        if resolved and rnd.random() < 0.5:
            kind = rnd.choice(["csat"] * 8 + ["nps", "ces"])
            done = rnd.random() < 0.6
            rows["surveys"].append(
                conversation_row(
                    desk,
                    conv,
                    f"{conv}-survey",
                    customer_id=customer,
                    kind=kind,
                    channel="chat",
                    token=f"{conv}-token-0000000000",
                    sent_at=opened,
                    score=rnd.randint(*{"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}[kind]) if done else None,
                    answered_at=opened if done else None,
                )
            )
    # one multi-row insert: every conversation with the same columns (an empty slot all NULL)
    slots = {key for c in rows["conversations"] for key in c if key.startswith(("response_", "resolution_"))}
    for c in rows["conversations"]:
        c.update({key: c.get(key) for key in slots})
    return rows


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    if q == 0.5:
        return statistics.median(values)
    return statistics.quantiles(values, n=10, method="inclusive")[8]


def expected(rows: dict[str, list[dict[str, Any]]], key: str) -> dict[Any, dict[str, Any]]:
    replies: dict[str, int] = defaultdict(int)
    for m in rows["messages"]:
        if m["direction"] == "outbound" and m["sender_kind"] == "agent":
            replies[m["conversation_id"]] += 1
    met: dict[str, int] = defaultdict(int)
    finished: dict[str, int] = defaultdict(int)
    for s in rows["clocks"]:
        if s["stopped_at"] is not None or s["breached_at"] is not None:
            finished[s["conversation_id"]] += 1
            if s["stopped_at"] is not None and s["breached_at"] is None:
                met[s["conversation_id"]] += 1
    csat = [v for v in rows["surveys"] if v["kind"] == "csat"]
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for c in rows["conversations"]:
        if START <= c["opened_at"] < END and c["status"] != "merged":
            groups[
                "all" if key == "none" else c[{"queue": "queue_id", "channel": "channel", "agent": "agent_id"}[key]]
            ].append(c)
    out = {}
    for k, convs in groups.items():
        ids = {c["id"] for c in convs}
        fr = [(c["first_response_at"] - c["opened_at"]).total_seconds() for c in convs if c["first_response_at"]]
        res = [
            (c["resolved_at"] - c["opened_at"]).total_seconds()
            for c in convs
            if c["resolved_at"] and c["status"] == "resolved"
        ]
        resolved = [c for c in convs if c["resolved_at"] and c["status"] == "resolved"]
        fcr = [c for c in resolved if c["reopened_at"] is None and replies[c["id"]] == 1]
        sent = [v for v in csat if v["conversation_id"] in ids]
        answers = [v["score"] for v in sent if v["answered_at"] is not None]
        total_clocks = sum(finished[i] for i in ids)
        nps = [
            v["score"]
            for v in rows["surveys"]
            if v["kind"] == "nps" and v["conversation_id"] in ids and v["answered_at"]
        ]
        ces = [
            v["score"]
            for v in rows["surveys"]
            if v["kind"] == "ces" and v["conversation_id"] in ids and v["answered_at"]
        ]
        out[k] = {
            "conversations": len(convs),
            "first_response_s": {"median": pct(fr, 0.5), "p90": pct(fr, 0.9)},
            "resolution_s": {"median": pct(res, 0.5), "p90": pct(res, 0.9)},
            "sla_attainment_pct": 100 * sum(met[i] for i in ids) / total_clocks if total_clocks else None,
            "escalation_rate": sum(1 for c in convs if c["escalated_at"]) / len(convs),
            "reopen_rate": sum(1 for c in convs if c["reopened_at"]) / len(convs),
            "fcr_rate": len(fcr) / len(resolved) if resolved else None,
            "csat_avg": sum(answers) / len(answers) if answers else None,
            "csat_response_rate": len(answers) / len(sent) if sent else None,
            # Net Promoter Score: % answering 9-10 minus % answering 0-6
            "nps": 100 * (sum(x >= 9 for x in nps) - sum(x <= 6 for x in nps)) / len(nps) if nps else None,
            "ces_avg": sum(ces) / len(ces) if ces else None,
        }
    return out


def close(got: Any, want: Any, tolerance: float) -> bool:
    if want is None or got is None:
        return got is want
    return abs(float(got) - float(want)) <= tolerance


@pytest.mark.parametrize(("shape", "n"), [("production", 10_000), ("embedded", 600)])
async def test_kpis_equal_a_straightforward_computation(
    shape: str, n: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    servers = request.getfixturevalue("servers") if shape == "production" else None
    # no routing pass may touch the generated history: timers far away, no consumers
    settings = settings_for(shape, tmp_path, servers, routing_tick_s=3600)
    async with started_desk(settings, consume=False) as desk:
        rows = generate(desk, n)
        async with desk.router.db.transaction() as conn:
            for table in ("customers", "conversations", "sla_timers", "surveys"):
                await conn.execute(insert(getattr(t, table)), rows[table])
            await insert_rows(conn, t.messages, rows["messages"])  # numbered as the router's are (SQLite too)
        assert len(rows["conversations"]) == n
        async with (
            serving(desk.router) as base,
            httpx.AsyncClient(base_url=base, timeout=60, headers={"Authorization": f"Bearer {desk.key}"}) as http,
        ):
            for group in ("none", "queue", "channel", "agent"):
                r = await http.get(
                    "/v1/stats/kpis", params={"from": START.isoformat(), "to": END.isoformat(), "group_by": group}
                )
                assert r.status_code == 200, r.text
                got = {item["key"]: item for item in r.json()["items"]}
                want = expected(rows, group)
                assert set(got) == set(want), group
                for key, w in want.items():
                    g = got[key]
                    assert g["conversations"] == w["conversations"]
                    for name in ("first_response_s", "resolution_s"):
                        for q in ("median", "p90"):
                            assert close(g[name][q], w[name][q], 0.01), (group, key, name, q, g[name], w[name])
                    for name, tol in (
                        ("sla_attainment_pct", 0.01),
                        ("escalation_rate", 1e-4),
                        ("reopen_rate", 1e-4),
                        ("fcr_rate", 1e-4),
                        ("csat_avg", 1e-3),
                        ("csat_response_rate", 1e-4),
                        ("nps", 0.01),
                        ("ces_avg", 1e-3),
                    ):
                        assert close(g[name], w[name], tol), (group, key, name, g[name], w[name])
