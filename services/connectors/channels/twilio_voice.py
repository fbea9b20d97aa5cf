"""Phone calls through Twilio Programmable Voice.

Inbound (every webhook verified with X-Twilio-Signature over the public URL and the form):
- ``POST /webhooks/twilio/voice`` — an incoming call: a ``voice`` conversation event from the caller's phone
  (so the caller joins their customer and open conversation), answered with TwiML that greets and holds the
  caller in a wait queue (``<Enqueue>``);
- ``…/wait`` — Twilio's hold loop: the caller's place and the expected wait when Twilio knows it
  (AvgQueueTime); past SWITCHBOARD_VOICE_MAX_WAIT_S the caller leaves the queue for voicemail;
- ``…/queue-result`` — how the wait ended: ``hangup`` is an abandoned call (an event: it leaves the routing
  queue at once), ``leave`` goes to voicemail (``<Record>`` with transcription);
- ``…/status`` — the call's status callbacks (ringing, in-progress, completed, no-answer, busy...);
- ``…/dial-result`` — the agent it was put through to did not answer: an event (the router offers the call to
  the next agent) and the caller goes back on hold;
- ``…/agent-answered`` — the agent picked up (the dialed leg's status callback): an event that stops the
  conversation's first-response clock;
- ``…/recording``, ``…/transcription`` — the voicemail's recording URL and transcription text, as messages.

Outbound: the connector follows ``routing.assignments``; an offer or assignment of a call puts it through to
the agent (Calls API update with ``<Dial>`` to the agent's client identity or number, from the agent's
``voice_endpoint``). ``conversation.outbound.voice`` carries what to tell a caller the router cannot put
through (the queue is closed): said, then voicemail."""

from __future__ import annotations

import logging
from urllib.parse import urlencode
from xml.sax.saxutils import escape, quoteattr

from fastapi import APIRouter, Request, Response
from starlette.datastructures import FormData

from services.connectors.channels.twilio_sms import TwilioApiConnector, verified_form
from services.connectors.runtime import ConnectorRuntime, Delivered, PermanentFailure, RecentIds
from shared import feed_events
from shared.bus import Record
from shared.consumer_loop import decodable
from shared.events import (
    Attachment,
    Call,
    CallStatus,
    Channel,
    Content,
    ConversationEvent,
    EventType,
    IdentityKind,
    Sender,
    utcnow,
)
from shared.outbound import OutboundMessage
from shared.settings import Settings

log = logging.getLogger(__name__)
BASE = "/webhooks/twilio/voice"
QUEUE = "switchboard"
ENDED = {
    "completed": CallStatus.COMPLETED,
    "busy": CallStatus.BUSY,
    "no-answer": CallStatus.NO_ANSWER,
    "failed": CallStatus.FAILED,
    "canceled": CallStatus.CANCELED,
    "ringing": CallStatus.RINGING,
    "in-progress": CallStatus.IN_PROGRESS,
}


def twiml_text(*verbs: str) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?><Response>' + "".join(verbs) + "</Response>"


def twiml(*verbs: str) -> Response:
    return Response(twiml_text(*verbs), media_type="text/xml")


def say(text: str, language: str | None = None) -> str:
    """``language``: the voice's locale (e.g. de-DE); Twilio's default voice speaks English."""
    if language:
        return f"<Say language={quoteattr(language)}>{escape(text)}</Say>"
    return f"<Say>{escape(text)}</Say>"


class TwilioVoiceConnector(TwilioApiConnector):
    name = "voice"
    outbound_channels = (Channel.VOICE,)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._dialed = RecentIds(10_000)

    def url(self, path: str, **query: str) -> str:
        """Callback URLs in TwiML: absolute when SWITCHBOARD_PUBLIC_BASE_URL is set (needed in TwiML sent
        through the REST API), else relative (Twilio resolves them against the webhook's URL)."""
        full = f"{BASE}{path}" + (f"?{urlencode(query)}" if query else "")
        base = self.settings.public_base_url
        return base.rstrip("/") + full if base else full

    def hold(self, greeting: str) -> Response:
        enqueue = (
            f"<Enqueue waitUrl={quoteattr(self.url('/wait'))} action={quoteattr(self.url('/queue-result'))}>"
            f"{QUEUE}</Enqueue>"
        )
        return twiml(say(greeting), enqueue)

    def voicemail(self, prompt: str, language: str | None = None) -> str:
        return say(prompt, language) + (
            f'<Record maxLength="120" playBeep="true" transcribe="true" '
            f"transcribeCallback={quoteattr(self.url('/transcription'))} action={quoteattr(self.url('/recording'))}/>"
        )

    # -- inbound -------------------------------------------------------------------------------------------------
    async def _verified(self, request: Request) -> FormData:
        return await verified_form(request, self.settings)

    def _event(
        self,
        form: FormData,
        key: str,
        *,
        text: str,
        call: Call | None,
        kind: EventType = EventType.CALL_STATUS,
        message_id: str | None = None,
        thread_ref: str | None = None,
        attachments: list[Attachment] | None = None,
    ) -> ConversationEvent:
        assert self.runtime is not None
        now = utcnow()
        return ConversationEvent(
            id=self.runtime.event_id(Channel.VOICE, key),
            source="switchboard/twilio/voice",
            type=kind,
            time=now,
            tenant=self.runtime.tenant,
            channel=Channel.VOICE,
            channel_message_id=message_id,
            thread_ref=thread_ref,
            sender=Sender(kind=IdentityKind.PHONE, value=str(form["From"]), verified=True),
            content=Content(text=text, attachments=attachments or []),
            received_at=now,
            call=call,
        )

    def routes(self) -> APIRouter:
        router = APIRouter(tags=["webhooks"])

        @router.post(BASE, response_class=Response)
        async def incoming(request: Request) -> Response:
            form = await self._verified(request)
            sid = str(form["CallSid"])
            event = self._event(
                form,
                sid,
                text="Incoming call",
                call=Call(sid=sid, status=CallStatus.QUEUED),
                kind=EventType.MESSAGE_RECEIVED,
                message_id=sid,
            )
            assert self.runtime is not None
            await self.runtime.ingest([event])
            return self.hold(self.settings.voice_greeting)

        @router.post(f"{BASE}/wait", response_class=Response)
        async def wait(request: Request) -> Response:
            form = await self._verified(request)
            waited = int(str(form.get("QueueTime", "0")) or 0)
            if waited >= self.settings.voice_max_wait_s:
                return twiml("<Leave/>")  # → queue-result "leave" → voicemail
            position = str(form.get("QueuePosition", "")).strip()
            average = int(str(form.get("AvgQueueTime", "0")) or 0)
            words = "Thank you for holding."
            if position:
                words += f" You are number {position} in line."
            if average > 0:
                minutes = max(1, round(average / 60))
                words += f" The expected wait is about {minutes} minute{'s' if minutes > 1 else ''}."
            return twiml(say(words), '<Pause length="20"/>')

        @router.post(f"{BASE}/queue-result", response_class=Response)
        async def queue_result(request: Request) -> Response:
            form = await self._verified(request)
            result = str(form.get("QueueResult", ""))
            sid = str(form["CallSid"])
            assert self.runtime is not None
            if result == "hangup":
                await self.runtime.ingest(
                    [
                        self._event(
                            form, f"{sid}:abandoned", text="abandoned", call=Call(sid=sid, status=CallStatus.ABANDONED)
                        )
                    ]
                )
                return twiml()
            if result == "leave":
                return twiml(self.voicemail("Sorry to keep you waiting. Please leave a message after the tone."))
            return twiml()

        @router.post(f"{BASE}/status", response_class=Response)
        async def status(request: Request) -> Response:
            form = await self._verified(request)
            state = ENDED.get(str(form.get("CallStatus", "")))
            if state is not None:
                sid = str(form["CallSid"])
                duration = str(form.get("CallDuration", "")).strip()
                call = Call(
                    sid=sid,
                    status=state,
                    duration_s=int(duration)
                    if duration.isascii() and duration.isdigit() and len(duration) <= 9
                    else None,
                )
                assert self.runtime is not None
                await self.runtime.ingest([self._event(form, f"{sid}:{state.value}", text=state.value, call=call)])
            return twiml()

        @router.post(f"{BASE}/dial-result", response_class=Response)
        async def dial_result(request: Request) -> Response:
            form = await self._verified(request)
            outcome = str(form.get("DialCallStatus", ""))
            if outcome in ("completed", "answered"):
                return twiml("<Hangup/>")  # the agent and the caller talked; the call is over
            sid, agent = str(form["CallSid"]), request.query_params.get("agent", "")
            call = Call(sid=sid, status=CallStatus.AGENT_NO_ANSWER, agent_id=agent or None)
            key = f"{sid}:no-answer:{agent}:{form.get('DialCallSid', '')}"
            assert self.runtime is not None
            await self.runtime.ingest([self._event(form, key, text="agent no answer", call=call)])
            return self.hold("Sorry, let's try someone else. Please hold.")

        @router.post(f"{BASE}/agent-answered", response_class=Response)
        async def agent_answered(request: Request) -> Response:
            """The agent's leg of a call was answered (the <Dial> noun's status callback): an event on the
            caller's call, which stops the conversation's response clocks."""
            form = await self._verified(request)
            sid, agent = request.query_params.get("call", ""), request.query_params.get("agent", "")
            if sid:
                call = Call(sid=sid, status=CallStatus.IN_PROGRESS, agent_id=agent or None)
                event = self._event(form, f"{sid}:answered:{agent}", text="answered by the agent", call=call)
                assert self.runtime is not None
                await self.runtime.ingest([event])
            return twiml()

        @router.post(f"{BASE}/recording", response_class=Response)
        async def recording(request: Request) -> Response:
            form = await self._verified(request)
            sid, url = str(form["CallSid"]), str(form.get("RecordingUrl", ""))
            seconds = str(form.get("RecordingDuration", "")).strip()
            if url:
                event = self._event(
                    form,
                    f"{sid}:recording:{form.get('RecordingSid', url)}",
                    text=f"Voicemail ({seconds} s)" if seconds else "Voicemail",
                    call=Call(sid=sid, status=CallStatus.VOICEMAIL),
                    kind=EventType.MESSAGE_RECEIVED,
                    message_id=str(form.get("RecordingSid", "")) or None,
                    thread_ref=f"voicemail:{sid}",
                    attachments=[Attachment(name="voicemail", content_type="audio/wav", size=0, ref=url)],
                )
                assert self.runtime is not None
                await self.runtime.ingest([event])
            return twiml(say("Thank you. We will call you back. Goodbye."), "<Hangup/>")

        @router.post(f"{BASE}/transcription", response_class=Response)
        async def transcription(request: Request) -> Response:
            form = await self._verified(request)
            text = str(form.get("TranscriptionText", "")).strip()
            sid = str(form["CallSid"])
            if text and str(form.get("TranscriptionStatus", "completed")) == "completed":
                event = self._event(
                    form,
                    f"{sid}:transcription:{form.get('TranscriptionSid', '')}",
                    text=f"Voicemail transcription: {text}",
                    call=Call(sid=sid, status=CallStatus.VOICEMAIL),
                    kind=EventType.MESSAGE_RECEIVED,
                    message_id=str(form.get("TranscriptionSid", "")) or None,
                    thread_ref=f"voicemail:{sid}",
                )
                assert self.runtime is not None
                await self.runtime.ingest([event])
            return twiml()

        return router

    # -- outbound --------------------------------------------------------------------------------------------------
    async def start(self, runtime: ConnectorRuntime) -> None:
        await super().start(runtime)
        assert self.runtime is not None
        group = f"connector-voice-{self.settings.consumer_group}"
        self.runtime.follow(self.runtime.topics.assignments, group, self._on_routing)

    async def _on_routing(self, records: list[Record]) -> None:
        """Offers and assignments of calls: put the call through to that agent (once per agent and call)."""
        # a record that does not decode is skipped here; the router's webhook dispatcher (one shared group)
        # dead-letters it once
        for event in decodable(records, feed_events.decode, log, "voice.bad_feed_record"):
            if (
                not isinstance(event, feed_events.Offer | feed_events.Assignment)
                or event.channel is not Channel.VOICE
                or event.task != "call"
                or not event.call_sid
                or event.conversation_id is None
                or self.runtime is None
                or event.tenant != self.runtime.tenant
            ):
                continue
            key = f"{event.call_sid}:{event.agent_id}:{event.conversation_id}"
            if key in self._dialed:
                continue  # the offer was put through; its acceptance is the same call
            await self.put_through(event.call_sid, event.agent_id, event.conversation_id, event.voice_endpoint)
            self._dialed.add(key)

    async def put_through(self, call_sid: str, agent_id: str, conversation_id: str, endpoint: str | None) -> None:
        target = endpoint or f"client:{agent_id}"
        # the agent picking up is the caller's first response: Twilio tells /agent-answered
        answered = quoteattr(self.url("/agent-answered", call=call_sid, agent=agent_id))
        callback = f'statusCallbackEvent="answered" statusCallback={answered}'
        noun = (
            f"<Client {callback}>{escape(target.removeprefix('client:'))}</Client>"
            if target.startswith("client:")
            else f"<Number {callback}>{escape(target)}</Number>"
        )
        action = self.url("/dial-result", conversation=conversation_id, agent=agent_id)
        dial = (
            f'<Dial timeout="{self.settings.voice_dial_timeout_s}" answerOnBridge="true" '
            f"action={quoteattr(action)}>{noun}</Dial>"
        )
        try:
            await self._update_call(call_sid, twiml_text(dial))
        except PermanentFailure as exc:
            log.warning("voice.put_through_failed", extra={"error": str(exc)[:200]})

    async def _update_call(self, call_sid: str, body: str) -> None:
        sid, token = self.settings.twilio_account_sid, self.settings.twilio_auth_token
        if not sid or token is None:
            raise PermanentFailure("Twilio account or token not configured")
        await self.send(
            f"/2010-04-01/Accounts/{sid}/Calls/{call_sid}.json",
            data={"Twiml": body},
            auth=(sid, token.get_secret_value()),
        )

    async def deliver(self, message: OutboundMessage) -> Delivered:
        """What to tell a caller the router cannot put through (closed): said, then voicemail."""
        if not message.thread_ref:
            raise PermanentFailure("no live call to speak to")
        await self._update_call(message.thread_ref, twiml_text(self.voicemail(message.text, message.language)))
        return Delivered(message.thread_ref)
