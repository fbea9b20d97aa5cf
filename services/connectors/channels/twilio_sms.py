"""SMS through Twilio: the inbound webhook (``/webhooks/twilio/sms``) is verified with X-Twilio-Signature
over the public URL and the sorted form parameters, answered with empty TwiML; replies go out through the
Messages API."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException

from services.connectors.channels.provider_api import ProviderApiConnector
from services.connectors.runtime import Delivered, PermanentFailure
from services.connectors.signatures import twilio_valid
from shared.events import Attachment, Channel, Content, ConversationEvent, IdentityKind, Sender, utcnow
from shared.outbound import OutboundMessage
from shared.settings import Settings

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def public_url(request: Request, settings: Settings) -> str:
    """The URL as Twilio called it: behind a proxy, SWITCHBOARD_PUBLIC_BASE_URL + path + query."""
    if settings.public_base_url:
        url = settings.public_base_url.rstrip("/") + request.url.path
        return url + (f"?{request.url.query}" if request.url.query else "")
    return str(request.url)


async def verified_form(request: Request, settings: Settings) -> FormData:
    """The webhook's form, once X-Twilio-Signature checks out (401 without one, 403 when it does not)."""
    token = settings.twilio_auth_token
    header = request.headers.get("x-twilio-signature")
    if token is None or header is None:
        raise HTTPException(401, "missing X-Twilio-Signature")
    form = await request.form()
    params = [(k, str(v)) for k, v in form.multi_items()]
    if not twilio_valid(token.get_secret_value(), public_url(request, settings), params, header):
        raise HTTPException(403, "bad X-Twilio-Signature")
    return form


def normalize(form: FormData, tenant: str, event_id: object) -> ConversationEvent:
    sid = form["MessageSid"]
    media = int(str(form.get("NumMedia", "0")) or 0)
    attachments = [
        Attachment(
            name=f"media{i}",
            content_type=str(form.get(f"MediaContentType{i}", "application/octet-stream")),
            size=0,
            ref=str(form[f"MediaUrl{i}"]),
        )
        for i in range(media)
        if f"MediaUrl{i}" in form
    ]
    now = utcnow()
    return ConversationEvent(
        id=event_id(Channel.SMS, str(sid)),  # type: ignore[operator]
        source="switchboard/twilio/sms",
        time=now,
        tenant=tenant,
        channel=Channel.SMS,
        channel_message_id=str(sid),
        sender=Sender(kind=IdentityKind.PHONE, value=str(form["From"]), verified=True),
        content=Content(text=str(form.get("Body", "")), attachments=attachments),
        received_at=now,
    )


class TwilioApiConnector(ProviderApiConnector):
    """What Twilio's connectors (SMS here, voice in ``twilio_voice.py``) share: Twilio's REST API."""

    provider = "twilio"

    def base_url(self) -> str:
        return self.settings.twilio_api_base_url


class TwilioSmsConnector(TwilioApiConnector):
    name = "twilio"
    outbound_channels = (Channel.SMS,)

    def routes(self) -> APIRouter:
        router = APIRouter(tags=["webhooks"])

        @router.post("/webhooks/twilio/sms", response_class=Response)
        async def receive(request: Request) -> Response:
            form = await verified_form(request, self.settings)
            params = [(k, str(v)) for k, v in form.multi_items()]
            assert self.runtime is not None
            try:
                event = normalize(form, self.runtime.tenant, self.runtime.event_id)
            except (KeyError, ValueError) as exc:
                await self.runtime.reject(
                    str(params).encode(), f"twilio: cannot normalize: {exc!r}"[:500], "webhook:twilio"
                )
                return Response(EMPTY_TWIML, media_type="text/xml")
            await self.runtime.ingest([event])
            return Response(EMPTY_TWIML, media_type="text/xml")

        return router

    async def deliver(self, message: OutboundMessage) -> Delivered:
        sid, token = self.settings.twilio_account_sid, self.settings.twilio_auth_token
        if not sid or token is None or not self.settings.twilio_from_number:
            raise PermanentFailure("Twilio account, token or from number not configured")
        r = await self.send(
            f"/2010-04-01/Accounts/{sid}/Messages.json",
            data={"From": self.settings.twilio_from_number, "To": message.to.value, "Body": message.text},
            auth=(sid, token.get_secret_value()),
        )
        return Delivered(r.json().get("sid"))
