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
from datetime import UTC, datetime
from typing import Any

from services.router.domain.model import ConversationStatus
from services.router.domain.voice_prompts import closed_prompt
from services.router.handlers.ports import UnitOfWork
from services.router.handlers.ports.records import Lifecycle, NewMessage, VoiceRequest
from shared.bus import Outgoing
from shared.events import CallStatus, Channel, ConversationEvent, IdentityKind
from shared.ids import new_id
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
ABANDONED_NOTE = "abandoned: the caller hung up while waiting"


@dataclass(frozen=True, slots=True)
class CallOutcome:
    tenant_id: str
    conversation_id: str
    status: CallStatus
    agent_id: str | None  # who holds the conversation now
    no_answer_agent: str | None = None  # for agent-no-answer: who did not pick up
    back_to: str | None = None  # a finished call: the channel the customer wrote on before
    abandoned: bool = False
    answered: bool = False  # the agent picked up: the customer has been responded to


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
    u: UnitOfWork, items: Sequence[tuple[ConversationEvent, str]], now: datetime
) -> list[CallOutcome]:
    """Call progress events → call-log lines on their call's conversation, and what routing must do."""
    if not items:
        return []
    sids = {(e.tenant, e.call.sid) for e, _ in items if e.call and e.call.sid}
    found = await u.calls.conversations_of_calls(sids)
    # a caller who left a voicemail did not abandon: the voicemail waits for an agent to call back
    with_voicemail = await u.calls.with_voicemail(sids)
    messages: list[NewMessage] = []
    outcomes: list[CallOutcome] = []
    ended_with_agent: list[tuple[str, str]] = []
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
        if call.status in ENDED and waiting and (event.tenant, call.sid) in with_voicemail:
            continue
        if call.status in ENDED and waiting:
            outcomes.append(CallOutcome(event.tenant, conv.id, CallStatus.ABANDONED, None, abandoned=True))
        elif call.status in ENDED:
            ended_with_agent.append((event.tenant, conv.id))
            outcomes.append(CallOutcome(event.tenant, conv.id, call.status, conv.agent_id))
        elif call.status is CallStatus.AGENT_NO_ANSWER:
            outcomes.append(CallOutcome(event.tenant, conv.id, call.status, conv.agent_id, call.agent_id))
        elif call.status is CallStatus.IN_PROGRESS and not waiting:
            outcomes.append(CallOutcome(event.tenant, conv.id, call.status, conv.agent_id, answered=True))
    await u.conversations.insert_messages(messages, now)
    if ended_with_agent:
        before = await u.calls.last_written_channels(ended_with_agent)
        outcomes = [
            CallOutcome(o.tenant_id, o.conversation_id, o.status, o.agent_id, back_to=before.get(o.conversation_id))
            if o.conversation_id in before
            else o
            for o in outcomes
        ]
    return outcomes


async def abandon(u: UnitOfWork, tenant_id: str, conversation_ids: Iterable[str], now: datetime) -> None:
    """The caller hung up while waiting: the conversation leaves the queue, resolved as abandoned."""
    waiting = await u.calls.waiting(tenant_id, conversation_ids)
    await u.calls.mark_abandoned(tenant_id, [w.conversation_id for w in waiting], ABANDONED_NOTE, now)
    await u.conversations.add_lifecycle(
        [
            Lifecycle(
                tenant_id,
                w.customer_id,
                w.conversation_id,
                "call_abandoned",
                now,
                {"waited_s": (now - w.since).total_seconds()},
            )
            for w in waiting
        ]
    )


async def voice_details(u: UnitOfWork, keys: Iterable[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """What the voice connector and the console need about voice work, by (tenant, conversation id): the live
    call's id, or for a callback request the number to call and the window."""
    return await _details(u, await u.calls.latest_requests(keys))


async def _details(u: UnitOfWork, requests: Sequence[VoiceRequest]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in requests:
        if r.thread_ref == CALLBACK_REF or (r.thread_ref or "").startswith("voicemail:"):
            # a callback request, or a voicemail: the agent calls the customer back
            out[r.conversation_id] = {"task": "callback", "request": r.text}
        else:
            out[r.conversation_id] = {"task": "call", "call_sid": r.call_sid}
    if requests:
        customers = {(r.tenant_id, r.customer_id) for r in requests}
        phones = await u.calls.phone_identities(customers)
        # a number the customer gave (an unverified claim) is on the profile, not an identity
        shown = await u.calls.profile_phones(customers)
        for r in requests:
            out[r.conversation_id]["phone"] = phones.get(r.customer_id) or shown.get(r.customer_id)
    return out


async def agent_endpoints(u: UnitOfWork, keys: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Where each (tenant, agent id)'s calls are put through, by agent id: the endpoint they set, else their
    console's client."""
    return {
        agent_id: endpoint or f"client:{agent_id}"
        for agent_id, endpoint in (await u.calls.voice_endpoints(keys)).items()
    }


async def closed_prompts(
    u: UnitOfWork, topics: Topics, tenant_id: str, waiting: dict[str, tuple[float | None, str]], now: datetime
) -> list[Outgoing]:
    """Callers waiting in a closed queue are told when it opens, in the queue's time zone, and offered voicemail
    (the voice connector says the text and records). ``waiting``: conversation id → (when the queue opens, epoch
    s, or None; the queue's IANA time zone)."""
    requests = {r.conversation_id: r for r in await u.calls.latest_requests((tenant_id, c) for c in waiting)}
    details = await _details(u, list(requests.values()))
    keys = {  # the prompt's event id: one per call
        conv_id: f"voicemail-prompt:{conv_id}:{d['call_sid']}"
        for conv_id, d in details.items()
        if d.get("task") == "call" and d.get("call_sid")
    }
    told = await u.conversations.known_event_ids((tenant_id, key) for key in keys.values())
    callers = await u.customers.customer_attrs({(tenant_id, r.customer_id) for r in requests.values()})
    messages: list[NewMessage] = []
    out: list[Outgoing] = []
    for conv_id, (opens, zone) in waiting.items():
        key = keys.get(conv_id)
        if key is None or (tenant_id, key) in told:
            continue  # not a live call, or told already (a rebuild acknowledges again)
        d = details[conv_id]
        customer = requests[conv_id].customer_id
        language = callers.get(customer, {}).get("language")
        text, locale = closed_prompt(language, datetime.fromtimestamp(opens, UTC) if opens else None, zone)
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
            language=locale,
        )
        messages.append(
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
        )
        out.append(Outgoing(topics.outbound("voice"), encode(outbound), conv_id.encode()))
    await u.conversations.insert_messages(messages, now)
    return out
