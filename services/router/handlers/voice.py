"""Phone calls in the router. A call is a conversation event on channel ``voice`` from the caller's phone,
so it joins the caller's customer and open conversation like any message; routing then counts it on the
agent's voice capacity (1 by default). The call's progress arrives as ``switchboard.call.status`` events:
they are stored on the conversation as call-log lines and drive routing — a caller who hangs up while
waiting leaves the queue at once (abandoned, recorded for KPIs); an agent who does not pick up is skipped
and the call offered to the next; a finished call hands the conversation back to the channel the customer
wrote on before. Offers and assignments of voice work carry what the voice connector needs to put the call
through (the call id, the agent's endpoint) or, for a callback request, the number to call."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, update

from services.router.adapters.db import tables as t
from services.router.adapters.db.unit_of_work import Lifecycle, NewMessage, Unit, new_id
from services.router.domain.model import ConversationStatus
from shared.bus import Outgoing
from shared.events import CallStatus, Channel, ConversationEvent, IdentityKind
from shared.outbound import OutboundMessage, Recipient, encode
from shared.topics import Topics

ENDED = {
    CallStatus.ABANDONED,
    CallStatus.COMPLETED,
    CallStatus.CANCELED,
    CallStatus.NO_ANSWER,
    CallStatus.BUSY,
    CallStatus.FAILED,
}
CALLBACK_REF = "callback"  # thread_ref of a callback request's message


@dataclass(frozen=True, slots=True)
class CallOutcome:
    tenant_id: str
    conversation_id: str
    status: CallStatus
    agent_id: str | None  # who holds the conversation now
    no_answer_agent: str | None = None  # for agent-no-answer: who did not pick up
    back_to: str | None = None  # a finished call: the channel the customer wrote on before
    abandoned: bool = False


def describe(event: ConversationEvent) -> str:
    call = event.call
    assert call is not None
    if call.status is CallStatus.ABANDONED:
        return "Caller hung up while waiting"
    if call.status is CallStatus.AGENT_NO_ANSWER:
        return f"Put through to {call.agent_id or 'an agent'}, no answer"
    if call.status is CallStatus.COMPLETED and call.duration_s is not None:
        return f"Call completed ({call.duration_s} s)"
    return f"Call {call.status.value.replace('-', ' ')}"


async def store_call_statuses(
    u: Unit, items: Sequence[tuple[ConversationEvent, str]], now: datetime
) -> list[CallOutcome]:
    """Call progress events → call-log lines on their call's conversation, and what routing must do."""
    if not items:
        return []
    m, c = t.messages.c, t.conversations.c
    sids = {(e.tenant, e.call.sid) for e, _ in items if e.call and e.call.sid}
    found: dict[tuple[str, str], Any] = {}
    if sids:
        rows = await u.conn.execute(
            select(m.tenant_id, m.channel_message_id, c.id, c.customer_id, c.status, c.agent_id)
            .join(t.conversations, c.id == m.conversation_id)
            .where(m.channel == "voice", m.channel_message_id.in_([s for _, s in sids]), m.direction == "inbound")
        )
        found = {(r.tenant_id, r.channel_message_id): r for r in rows}
    # a caller who left a voicemail did not abandon: the voicemail waits for an agent to call back
    with_voicemail = (
        {
            r.thread_ref.removeprefix("voicemail:")
            for r in await u.conn.execute(
                select(m.thread_ref).where(m.thread_ref.in_([f"voicemail:{sid}" for _, sid in sids]))
            )
        }
        if sids
        else set()
    )
    messages: list[NewMessage] = []
    outcomes: list[CallOutcome] = []
    ended_with_agent: list[str] = []
    for event, _ in items:
        call = event.call
        assert call is not None
        conv = found.get((event.tenant, call.sid or ""))
        if conv is None:
            continue  # a status for a call we never saw: nothing to attach it to
        messages.append(
            NewMessage(
                id=new_id(),
                tenant_id=event.tenant,
                event_id=event.id,
                conversation_id=conv.id,
                customer_id=conv.customer_id,
                channel="voice",
                direction="inbound",
                channel_message_id=None,
                sender_kind="call",
                subject=None,
                text=describe(event),
                sent_at=event.sent_at,
                received_at=event.received_at,
                thread_ref=call.sid,
            )
        )
        if conv.status != ConversationStatus.OPEN.value:
            continue
        waiting = conv.agent_id is None
        if call.status in ENDED and waiting and call.sid in with_voicemail:
            continue
        if call.status in ENDED and waiting:
            outcomes.append(CallOutcome(event.tenant, conv.id, CallStatus.ABANDONED, None, abandoned=True))
        elif call.status in ENDED:
            ended_with_agent.append(conv.id)
            outcomes.append(CallOutcome(event.tenant, conv.id, call.status, conv.agent_id))
        elif call.status is CallStatus.AGENT_NO_ANSWER:
            outcomes.append(CallOutcome(event.tenant, conv.id, call.status, conv.agent_id, call.agent_id))
    await u.insert_messages(messages, now)
    if ended_with_agent:
        before = await _last_written_channels(u, ended_with_agent)
        outcomes = [
            CallOutcome(o.tenant_id, o.conversation_id, o.status, o.agent_id, back_to=before.get(o.conversation_id))
            if o.conversation_id in before
            else o
            for o in outcomes
        ]
    return outcomes


async def _last_written_channels(u: Unit, conversation_ids: Sequence[str]) -> dict[str, str]:
    """The channel each customer last wrote on other than the phone."""
    m = t.messages.c
    latest = (
        select(m.conversation_id, func.max(m.seq).label("seq"))
        .where(
            m.conversation_id.in_(conversation_ids),
            m.direction == "inbound",
            m.channel != "voice",
            m.sender_kind != "call",
        )
        .group_by(m.conversation_id)
        .subquery()
    )
    rows = await u.conn.execute(
        select(m.conversation_id, m.channel).join(
            latest, and_(latest.c.conversation_id == m.conversation_id, latest.c.seq == m.seq)
        )
    )
    return {r.conversation_id: r.channel for r in rows}


async def abandon(u: Unit, tenant_id: str, conversation_ids: Iterable[str], now: datetime) -> None:
    """The caller hung up while waiting: the conversation leaves the queue, resolved as abandoned."""
    c = t.conversations.c
    ids = list(conversation_ids)
    if not ids:
        return
    rows = (
        await u.conn.execute(
            select(c.id, c.customer_id, func.coalesce(c.queued_at, c.opened_at).label("since")).where(
                c.id.in_(ids), c.tenant_id == tenant_id, c.status == ConversationStatus.OPEN.value
            )
        )
    ).all()
    for r in rows:
        await u.conn.execute(
            update(t.conversations)
            .where(c.id == r.id)
            .values(
                status=ConversationStatus.RESOLVED.value,
                resolved_at=now,
                abandoned_at=now,
                resolution_note="abandoned: the caller hung up while waiting",
            )
        )
    await u.add_lifecycle(
        [
            Lifecycle(
                tenant_id, r.customer_id, r.id, "call_abandoned", now, {"waited_s": (now - r.since).total_seconds()}
            )
            for r in rows
        ]
    )


async def voice_details(u: Unit, conversation_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """What the voice connector and the console need about voice work: the live call's id, or for a
    callback request the number to call and the window."""
    ids = list(set(conversation_ids))
    if not ids:
        return {}
    m, i, c = t.messages.c, t.identities.c, t.conversations.c
    latest = (
        select(m.conversation_id, func.max(m.seq).label("seq"))
        .where(m.conversation_id.in_(ids), m.channel == "voice", m.direction == "inbound", m.sender_kind != "call")
        .group_by(m.conversation_id)
        .subquery()
    )
    rows = await u.conn.execute(
        select(m.conversation_id, m.channel_message_id, m.thread_ref, m.text, c.customer_id)
        .join(latest, and_(latest.c.conversation_id == m.conversation_id, latest.c.seq == m.seq))
        .join(t.conversations, c.id == m.conversation_id)
    )
    out: dict[str, dict[str, Any]] = {}
    customers: dict[str, str] = {}
    for r in rows:
        if r.thread_ref == CALLBACK_REF or (r.thread_ref or "").startswith("voicemail:"):
            # a callback request, or a voicemail: the agent calls the customer back
            out[r.conversation_id] = {"task": "callback", "request": r.text}
        else:
            out[r.conversation_id] = {"task": "call", "call_sid": r.channel_message_id}
        customers[r.conversation_id] = r.customer_id
    if customers:
        phones = {
            r.customer_id: r.value
            for r in await u.conn.execute(
                select(i.customer_id, i.value).where(
                    i.customer_id.in_(set(customers.values())), i.kind == IdentityKind.PHONE.value
                )
            )
        }
        cu = t.customers.c
        shown = {  # a number the customer gave (an unverified claim) is on the profile, not an identity
            r.id: r.phone
            for r in await u.conn.execute(select(cu.id, cu.phone).where(cu.id.in_(set(customers.values()))))
        }
        for conv_id, customer_id in customers.items():
            out[conv_id]["phone"] = phones.get(customer_id) or shown.get(customer_id)
    return out


async def agent_endpoints(u: Unit, agent_ids: Iterable[str]) -> dict[str, str]:
    a = t.agents.c
    ids = list(set(agent_ids))
    if not ids:
        return {}
    rows = await u.conn.execute(select(a.id, a.voice_endpoint).where(a.id.in_(ids)))
    return {r.id: r.voice_endpoint or f"client:{r.id}" for r in rows}


async def closed_prompts(
    u: Unit, topics: Topics, tenant_id: str, waiting: dict[str, float | None], now: datetime
) -> list[Outgoing]:
    """Callers waiting in a closed queue are told when it opens and offered voicemail (the voice connector
    says the text and records). ``waiting``: conversation id → when the queue opens (epoch s) or None."""
    details = await voice_details(u, waiting)
    out: list[Outgoing] = []
    c = t.conversations.c
    for conv_id, opens in waiting.items():
        d = details.get(conv_id)
        if not d or d.get("task") != "call" or not d.get("call_sid"):
            continue
        key = f"voicemail-prompt:{conv_id}:{d['call_sid']}"
        m = t.messages.c
        if (await u.conn.execute(select(m.id).where(m.tenant_id == tenant_id, m.event_id == key))).first():
            continue  # told already (a rebuild acknowledges again)
        customer = (await u.conn.execute(select(c.customer_id).where(c.id == conv_id))).scalar_one()
        when = datetime.fromtimestamp(opens, now.tzinfo).strftime("%A at %H:%M %Z") if opens else "soon"
        text = f"We are closed right now and open again {when}. Please leave a message after the tone."
        message_id = new_id()
        outbound = OutboundMessage(
            id=message_id,
            tenant=tenant_id,
            conversation_id=conv_id,
            channel=Channel.VOICE,
            to=Recipient(kind=IdentityKind.PHONE, value=d.get("phone") or "unknown"),
            text=text,
            thread_ref=d["call_sid"],
            created_at=now,
        )
        await u.insert_messages(
            [
                NewMessage(
                    message_id,
                    tenant_id,
                    key,
                    conv_id,
                    customer,
                    "voice",
                    "outbound",
                    None,
                    "system",
                    None,
                    text,
                    now,
                    now,
                    author="router",
                    status="queued",
                )
            ],
            now,
        )
        out.append(Outgoing(topics.outbound("voice"), encode(outbound), conv_id.encode()))
    return out
