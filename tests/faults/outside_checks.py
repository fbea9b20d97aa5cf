"""What the fault suite checks after a run, from outside the router: the database's own tables by SQL and what
the fake providers received, never the router's account of itself.

- double_assigned: pairs of assignment rows of one conversation whose intervals [assigned_at, ended_at)
  overlap, from the assignments table (a live row's interval is open-ended);
- capacity_violations: assignment starts at which the agent's load exceeds what it may hold, in the routing's
  own units (routing/capacity.py): the weighted sum, the per-channel maxima and the exclusive channels (a call
  alone) of the agent's routing profile, or the per-channel counts of an agent without one. The load is swept
  over time in SQL: +1 at each assigned_at, -1 at each ended_at (an end before a start at the same instant);
- feeds_disagree: conversations whose sequence of agents in the agents' feeds (offer / assignment events)
  is not the sequence of the assignments table: the console shows what the table holds;
- lost / duplicated: accepted messages not stored, stored more than once (by the token each message carries),
  whichever way they came: the REST API or a signed Telegram, WhatsApp, Messenger or SMS webhook;
- stored_on_wrong_channel: messages stored on another channel than the one they were sent by;
- replies_lost / replies_delivered_twice / replies_stored_twice: replies answered 202 or stored (a reply whose
  answer was lost may still be stored, and then must go out) and never delivered at the fake providers (the
  Telegram Bot API, the Graph API for WhatsApp and Messenger, Twilio's Messages API), delivered there more
  than once, stored more than once;
- replies_on_wrong_channel: replies delivered through another provider than their conversation's channel.

A connector commits each reply right after delivering it (services/connectors/runtime.py), so a kill -9 between
the two repeats that one reply when the connector is back (the sends carry no idempotency key). Such a
repeat is counted apart (replies_repeated_after_kill), and only if it is exactly that: the last reply of its
channel delivered before the connector was started again, delivered once more after, twice in all. Any other
second delivery is replies_delivered_twice.

Every figure is also given per channel (``channels``): sent, accepted, stored, lost, duplicated, webhooks
replayed; replies accepted, delivered, and repeated after a kill."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import JSON, String, column, text

from shared.store import Database
from tests.faults.channels import CHANNELS, WHATSAPP_PHONE_NUMBER_ID
from tests.faults.traffic import Tally

EPSILON = 1e-9  # units are sums of halves and the like

OVERLAPS = text(
    """
    SELECT a.conversation_id, a.agent_id AS first_agent, b.agent_id AS second_agent,
           a.assigned_at AS first_from, a.ended_at AS first_to, b.assigned_at AS second_from
    FROM assignments a
    JOIN assignments b ON b.conversation_id = a.conversation_id AND b.seq > a.seq
    WHERE a.tenant_id = :tenant AND b.tenant_id = :tenant
      AND b.assigned_at < COALESCE(a.ended_at, 'infinity') AND a.assigned_at < COALESCE(b.ended_at, 'infinity')
    ORDER BY a.seq
    """
)

# At every assignment start: the agent's load on that channel and in weighted units (the weight of a channel
# from the agent's routing profile, else the channel's own weight, else the profile's default, else 1).
LOAD = text(
    """
    WITH held AS (
      SELECT s.seq, s.agent_id, s.channel, s.assigned_at, s.ended_at,
             COALESCE((p.config -> 'weights' ->> s.channel)::float, (p.config -> 'weights' ->> 'default')::float,
                      1.0) AS weight,
             CASE WHEN COALESCE(p.config -> 'exclusive', '["voice"]')::jsonb @> to_jsonb(s.channel::text)
                  THEN 1 ELSE 0 END AS exclusive
      FROM assignments s
      JOIN agents g ON g.id = s.agent_id
      LEFT JOIN routing_profiles p ON p.id = g.profile_id
      WHERE s.tenant_id = :tenant
    ), steps AS (
      SELECT seq, agent_id, channel, weight, exclusive, assigned_at AS at, 1 AS delta FROM held
      UNION ALL
      SELECT seq, agent_id, channel, weight, exclusive, ended_at AS at, -1 AS delta FROM held WHERE ended_at IS NOT NULL
    ), swept AS (
      SELECT seq, agent_id, channel, at, delta,
             SUM(delta) OVER (PARTITION BY agent_id, channel ORDER BY at, delta, seq
                              ROWS UNBOUNDED PRECEDING) AS on_channel,
             SUM(delta * weight) OVER by_time AS units,
             SUM(delta) OVER by_time AS held,
             SUM(delta * exclusive) OVER by_time AS exclusive_held
      FROM steps
      WINDOW by_time AS (PARTITION BY agent_id ORDER BY at, delta, seq ROWS UNBOUNDED PRECEDING)
    )
    SELECT seq, agent_id, channel, at, on_channel, units, held, exclusive_held
    FROM swept WHERE delta = 1 ORDER BY at, seq
    """
)

LIMITS = text(
    """
    SELECT g.id, g.capacity, p.config AS profile
    FROM agents g LEFT JOIN routing_profiles p ON p.id = g.profile_id
    WHERE g.tenant_id = :tenant
    """
).columns(column("id", String), column("capacity", JSON), column("profile", JSON))

AGENT_SEQUENCES = text(
    """
    SELECT 'table' AS source, conversation_id, agent_id, seq FROM assignments WHERE tenant_id = :tenant
    UNION ALL
    SELECT 'feed', conversation_id, agent_id, seq FROM agent_events
    WHERE tenant_id = :tenant AND type IN ('offer', 'assignment')
    ORDER BY source, conversation_id, seq
    """
)

TOKENS = text(
    """
    SELECT split_part(text, ' ', 1) AS token, channel, count(*) AS n FROM messages
    WHERE tenant_id = :tenant AND direction = :direction AND text LIKE :pattern
    GROUP BY 1, 2
    """
)

REPLY_STATES = text(
    """
    SELECT split_part(text, ' ', 1) AS token, id, status, error, created_at FROM messages
    WHERE tenant_id = :tenant AND direction = 'outbound' AND split_part(text, ' ', 1) = ANY(:tokens)
    """
)


class Delivery(NamedTuple):
    """A message a fake provider was asked to send: the channel by its API, the text, when (Unix seconds)."""

    channel: str
    text: str
    at: float

    @property
    def token(self) -> str:
        return self.text.split(" ", 1)[0]


class Restart(NamedTuple):
    """A connector killed and started again at ``at`` (Unix seconds): what it delivered came before."""

    channels: tuple[str, ...]
    at: float


async def check(
    db: Database, tenant: str, tally: Tally, delivered: Sequence[Delivery], restarts: Sequence[Restart] = ()
) -> dict[str, Any]:
    """Every count that must be zero, with samples of what was found, and the figures they rest on.
    ``delivered``: every reply the fake providers received (``delivered_replies``); ``restarts``: every
    connector killed during the run."""
    assignments = await check_assignments(db, tenant)
    samples = assignments.pop("samples")
    inbound = await stored_on_channels(db, tenant, "inbound", "m%")
    stored = _tokens(inbound)
    wrong_channel = sorted(
        f"{token} {channel}" for token, channel in inbound if tally.channel_of.get(token, channel) != channel
    )
    outbound = await stored_on_channels(db, tenant, "outbound", "r%")
    replies_stored = _tokens(outbound)
    received = Counter((d.token, d.channel) for d in delivered)
    delivered_tokens = _tokens(received)
    replies_on_wrong_channel = sorted(
        f"{token} {channel}" for token, channel in received if tally.channel_of.get(token, channel) != channel
    )
    replies_lost = sorted((tally.replies_accepted | set(replies_stored)) - set(delivered_tokens))
    in_hand = repeated_after_restarts(delivered, restarts)
    repeated = sorted(token for token in in_hand if delivered_tokens[token] == 2)
    twice = sorted(
        token for token, n in delivered_tokens.items() if token.startswith("r") and n > 1 and token not in repeated
    )
    lost = sorted(tally.accepted - set(stored))
    return {
        "messages": tally.sent,
        "accepted": len(tally.accepted),
        "stored": len(set(stored) & tally.accepted),
        "lost": len(lost),
        "duplicated": sum(n - 1 for n in stored.values() if n > 1),
        "stored_on_wrong_channel": len(wrong_channel),
        "gave_up": len(tally.gave_up),
        "unexpected_answers": tally.unexpected,
        **assignments,
        "replies": len(tally.replies_accepted),
        "replies_stored": len(replies_stored),
        # a reply stored is in the outbox in the same transaction: it must be delivered, answered or not
        "replies_lost": len(replies_lost),
        "replies_delivered_twice": len(twice),
        "replies_stored_twice": sum(1 for n in replies_stored.values() if n > 1),
        "replies_on_wrong_channel": len(replies_on_wrong_channel),
        "replies_repeated_after_kill": len(repeated),  # at most one a channel a kill, by construction
        "replies_unanswered": len(tally.replies_unanswered),  # no answer: may be delivered, never twice
        "replies_to_closed": tally.replies_to_closed,  # a burst's reply to a conversation resolved meanwhile
        "resolved": tally.resolved,
        "duplicate_webhooks_replayed": tally.duplicate_webhooks,
        "client_retries": tally.client_retries,
        "channels": per_channel(tally, stored, delivered_tokens, set(repeated)),
        "samples": {
            "unexpected_answers": tally.unexpected_samples,
            "lost": {channel: [t for t in lost if tally.channel_of.get(t) == channel][:20] for channel in _sent(tally)},
            "stored_on_wrong_channel": wrong_channel[:20],  # "<token> <channel stored on>"
            **samples,
            "replies_lost": await _reply_states(db, tenant, replies_lost[:20]),
            "replies_on_wrong_channel": replies_on_wrong_channel[:20],  # "<token> <channel delivered on>"
            "replies_delivered_twice": [
                {"token": token, "at": [_iso(d.at) for d in delivered if d.token == token]} for token in twice[:20]
            ],
            "replies_repeated_after_kill": [
                {"token": token, "at": [_iso(d.at) for d in delivered if d.token == token]} for token in repeated[:20]
            ],
        },
    }


def repeated_after_restarts(delivered: Sequence[Delivery], restarts: Sequence[Restart]) -> set[str]:
    """The reply each killed connector may have had in hand on each of its channels: the last one it delivered
    there before it was started again, if that one was delivered again after (one outbound consumer a channel,
    one reply at a time: the last delivered is the only one that can be uncommitted)."""
    tokens = set()
    for restart in restarts:
        for channel in restart.channels:
            before = [d for d in delivered if d.channel == channel and d.at < restart.at]
            if not before:
                continue
            last = max(before, key=lambda d: d.at).token
            if any(d.token == last and d.channel == channel and d.at >= restart.at for d in delivered):
                tokens.add(last)
    return tokens


def per_channel(
    tally: Tally, stored: Counter[str], delivered: Counter[str], repeated: set[str]
) -> dict[str, dict[str, int]]:
    """The message and reply figures of each channel, by the channel each token was sent by."""
    names = ["sent", "accepted", "stored", "lost", "duplicated", "replayed"]
    names += ["replies", "replies_delivered", "replies_repeated_after_kill"]
    figures = {channel: dict.fromkeys(names, 0) for channel in _sent(tally)}
    for token, channel in tally.channel_of.items():
        row = figures[channel]
        if token.startswith("m"):
            row["sent"] += 1
            row["accepted"] += token in tally.accepted
            row["stored"] += token in stored and token in tally.accepted
            row["lost"] += token in tally.accepted and token not in stored
            row["duplicated"] += max(0, stored[token] - 1)
        else:
            row["replies"] += token in tally.replies_accepted
            row["replies_delivered"] += token in delivered
            row["replies_repeated_after_kill"] += token in repeated
    for channel, n in tally.replayed.items():
        figures[channel]["replayed"] = n
    return figures


def delivered_replies(requests: Sequence[Any]) -> list[Delivery]:
    """Every message the fake providers were asked to send, read as each provider's API takes it: Bot API
    sendMessage, Cloud API and Send API (Graph), Twilio's Messages resource."""
    out = []
    for r in requests:
        body = r.json if isinstance(r.json, dict) else {}
        if "/bot" in r.path:
            out.append(Delivery("telegram", str(body.get("text", "")), r.at))
        elif r.path.endswith(f"/{WHATSAPP_PHONE_NUMBER_ID}/messages"):
            out.append(Delivery("whatsapp", str(body.get("text", {}).get("body", "")), r.at))
        elif r.path.endswith("/me/messages"):
            out.append(Delivery("messenger", str(body.get("message", {}).get("text", "")), r.at))
        elif r.path.endswith("/Messages.json"):
            out.append(Delivery("sms", r.form.get("Body", ""), r.at))
    return out


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def _sent(tally: Tally) -> list[str]:
    """Every channel of the mix, in its order, and any other a token went by."""
    return list(dict.fromkeys((*CHANNELS, *tally.channel_of.values())))


def _tokens(by_channel: Counter[tuple[str, str]]) -> Counter[str]:
    """(token, channel) counts summed over the channels."""
    total: Counter[str] = Counter()
    for (token, _), n in by_channel.items():
        total[token] += n
    return total


async def check_assignments(db: Database, tenant: str) -> dict[str, Any]:
    async with db.read() as conn:
        overlaps = (await conn.execute(OVERLAPS, {"tenant": tenant})).mappings().all()
        load = (await conn.execute(LOAD, {"tenant": tenant})).mappings().all()
        limits = {r.id: (dict(r.capacity or {}), r.profile) for r in await conn.execute(LIMITS, {"tenant": tenant})}
        sequences = (await conn.execute(AGENT_SEQUENCES, {"tenant": tenant})).all()
    over = [dict(row) for row in load if _over(row, *limits.get(row["agent_id"], ({}, None)))]
    by_source: dict[str, dict[str, list[str]]] = {"table": defaultdict(list), "feed": defaultdict(list)}
    for source, conversation, agent, _ in sequences:
        agents = by_source[source][conversation]
        if not agents or agents[-1] != agent:  # an offer and its acceptance are one holding
            agents.append(agent)
    table, feed = by_source["table"], by_source["feed"]
    disagree = [c for c in set(table) | set(feed) if table.get(c) != feed.get(c)]
    return {
        "assignments": len(load),
        "double_assigned": len(overlaps),
        "capacity_violations": len(over),
        "peak_units": max((float(r["units"]) for r in load), default=0.0),
        "feeds_disagree": len(disagree),
        "samples": {
            "double_assigned": [_plain(dict(r)) for r in overlaps[:10]],
            "capacity_violations": [_plain(r) for r in over[:10]],
            "feeds_disagree": [{"conversation": c, "table": table.get(c), "feed": feed.get(c)} for c in disagree[:10]],
        },
    }


def _over(row: Any, capacity: dict[str, Any], profile: dict[str, Any] | None) -> bool:
    channel, on_channel = row["channel"], int(row["on_channel"])
    if profile is None:  # per-channel counts (AgentSpec.capacity)
        return on_channel > int(capacity.get(channel, capacity.get("default", 0)))
    maxima = profile.get("max") or {}
    if channel in maxima and on_channel > int(maxima[channel]):
        return True
    exclusive = int(row["exclusive_held"])
    if exclusive and (exclusive > 1 or int(row["held"]) > exclusive):  # a call alone, one at a time
        return True
    return float(row["units"]) > float(profile.get("capacity", 3.0)) + EPSILON


async def stored_on_channels(db: Database, tenant: str, direction: str, pattern: str) -> Counter[tuple[str, str]]:
    """Rows of ``messages`` by (token, channel)."""
    async with db.read() as conn:
        rows = await conn.execute(TOKENS, {"tenant": tenant, "direction": direction, "pattern": pattern})
        return Counter({(r.token, r.channel): int(r.n) for r in rows})


async def stored_tokens(db: Database, tenant: str, direction: str, pattern: str) -> Counter[str]:
    """Rows of ``messages`` by token, whatever their channel."""
    return _tokens(await stored_on_channels(db, tenant, direction, pattern))


async def _reply_states(db: Database, tenant: str, tokens: list[str]) -> list[dict[str, Any]]:
    """Where each lost reply got to: stored or not, and the delivery state the router holds."""
    if not tokens:
        return []
    async with db.read() as conn:
        rows = await conn.execute(REPLY_STATES, {"tenant": tenant, "tokens": tokens})
        found = {r.token: _plain(dict(r._mapping)) for r in rows}
    return [found.get(token, {"token": token, "stored": False}) for token in tokens]


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}
