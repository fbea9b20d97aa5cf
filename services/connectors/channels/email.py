"""Email: inbound over SMTP (aiosmtpd), IMAP (aioimaplib, IDLE where offered) and an inbound-parse webhook
(``/webhooks/email/inbound``); replies out over SMTP (aiosmtplib) with RFC 5322 threading headers and a
``reply+<conversation>@`` Reply-To, so a customer's answer finds its conversation even from another address."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from functools import partial
from typing import Any

import aioimaplib
import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException

from services.connectors.blobs import BlobStore
from services.connectors.channels.email_mime import ParsedEmail, parse
from services.connectors.replay import ReplayCache, Seen
from services.connectors.runtime import ConnectorRuntime, Delivered, PermanentFailure, TransientFailure
from services.connectors.signatures import email_webhook_valid, fresh, switchboard_body_valid
from shared import customer_events
from shared.bus import BusUnavailable, Record
from shared.events import Attachment, Channel, Content, ConversationEvent, IdentityKind, Sender, utcnow
from shared.outbound import OutboundMessage
from shared.settings import Settings

log = logging.getLogger(__name__)


def to_event(
    mail: ParsedEmail, raw: bytes, tenant: str, event_id: Any, blobs: BlobStore, provider_id: str | None = None
) -> ConversationEvent:
    attachments = [
        Attachment(name=name[:512], content_type=ctype, size=len(data), ref=blobs.put(data))
        for name, ctype, data in mail.attachments[:99]
    ]
    # the full message, untouched: agents see the clean text, nothing is thrown away
    attachments.append(
        Attachment(name="original.eml", content_type="message/rfc822", size=len(raw), ref=blobs.put(raw))
    )
    now = utcnow()
    thread = f"conversation:{mail.reply_token}" if mail.reply_token else mail.thread_root
    return ConversationEvent(
        id=event_id(Channel.EMAIL, provider_id or mail.message_id),
        source="switchboard/email",
        time=now,
        tenant=tenant,
        channel=Channel.EMAIL,
        channel_message_id=mail.message_id[:512],
        thread_ref=thread[:512] if thread else None,
        sender=Sender(
            kind=IdentityKind.EMAIL, value=mail.from_address, display_name=(mail.from_name or "")[:256] or None
        ),
        content=Content(
            text=mail.text[:100_000],
            html=(mail.html or "")[:100_000] or None,
            subject=mail.subject,
            attachments=attachments,
        ),
        sent_at=mail.date,
        received_at=now,
        automated=mail.automated,  # list mail: an agent may read it, nothing answers it automatically
    )


class _SmtpHandler:
    """aiosmtpd handler: 250 only once the event is durably on the bus; 451 (try later) if the bus is down."""

    def __init__(self, connector: EmailConnector) -> None:
        self.connector = connector

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        try:
            await self.connector.accept(raw, "smtp")
        except BusUnavailable:
            return "451 4.3.0 Temporarily unable to accept, try again later"
        return "250 2.0.0 Message accepted"


class EmailConnector:
    name = "email"
    outbound_channels = (Channel.EMAIL,)
    broadcast_outbound = False

    def __init__(self, settings: Settings, *, smtp_server: bool = True) -> None:
        self.settings = settings
        self.blobs = BlobStore(settings.blob_dir)
        self.runtime: ConnectorRuntime | None = None
        self.smtp_server = smtp_server
        self._server: asyncio.Server | None = None
        self._imap_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        # a token stays refused for as long as a timestamp signed with it could still be accepted
        self._tokens = ReplayCache(2 * settings.email_webhook_max_age_s)

    async def accept(self, raw: bytes, source: str, provider_id: str | None = None) -> str:
        """One inbound message from any path → event (or dead letter). Returns what became of it. The event's id
        comes from ``provider_id`` if given (a webhook's signed token: one message per token), else from the
        Message-Id (a message fetched twice is one event)."""
        assert self.runtime is not None
        try:
            mail = parse(raw, self.settings.email_reply_domain)
        except Exception as exc:  # malformed beyond what the email package tolerates
            await self.runtime.reject(raw, f"email: cannot parse: {exc!r}"[:500], f"email:{source}")
            return "dead-lettered"
        if mail.auto_reply:
            log.info("email.auto_reply_ignored", extra={"source": source})  # answering it would start a loop
            return "ignored"
        event = to_event(mail, raw, self.runtime.tenant, self.runtime.event_id, self.blobs, provider_id)
        await self.runtime.ingest([event])
        return "accepted"

    async def start(self, runtime: ConnectorRuntime) -> None:
        self.runtime = runtime
        if self.smtp_server and runtime.inbound:
            loop = asyncio.get_running_loop()
            factory = partial(
                SMTP,
                _SmtpHandler(self),
                data_size_limit=self.settings.smtp_max_bytes,
                enable_SMTPUTF8=True,
                hostname=self.settings.email_reply_domain,
            )
            self._server = await loop.create_server(factory, self.settings.smtp_host, self.settings.smtp_port)
        if self.settings.imap_host and runtime.inbound:
            self._imap_task = asyncio.create_task(self._poll_imap())
        # attachments of erased customers are deleted from this process's blob store (its own group: blob
        # directories may be per instance)
        runtime.follow(
            runtime.topics.customers, f"connector-email-erasures-{runtime.instance_id}", self._on_erased, inbound=True
        )

    async def _on_erased(self, records: list[Record]) -> None:
        """GDPR erasure (``customer.erased``): delete the erased customers' attachment blobs. A record that is no
        customer event (``InvalidEvent``, e.g. a newer ``schema_version``) is dead-lettered by the consume loop,
        not skipped: an erasure must not be lost, and redriving it after an upgrade completes it (deleting a blob
        twice is harmless)."""
        events = [customer_events.decode(record.value) for record in records]
        for event in events:
            if isinstance(event, customer_events.CustomerErased):
                deleted = sum(self.blobs.delete(ref) for ref in event.attachments)
                log.info("email.attachments_erased", extra={"count": deleted})

    async def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._imap_task is not None:
            self._imap_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._imap_task

    # -- IMAP ----------------------------------------------------------------------------------------------
    async def _poll_imap(self) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            try:
                await self._imap_session()
                backoff = 1.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("imap.error", extra={"error": repr(exc)[:300]})
                await asyncio.sleep(backoff)
                backoff = min(60.0, backoff * 2)

    async def _imap_session(self) -> None:
        s = self.settings
        cls = aioimaplib.IMAP4_SSL if s.imap_ssl else aioimaplib.IMAP4
        client = cls(host=s.imap_host, port=s.imap_port, timeout=30)
        await client.wait_hello_from_server()
        password = s.imap_password.get_secret_value() if s.imap_password else ""
        if (await client.login(s.imap_username or "", password)).result != "OK":
            raise PermissionError("IMAP login refused")
        await client.select(s.imap_mailbox)
        try:
            while not self._stopping.is_set():
                await self.fetch_unseen(client)
                if client.has_capability("IDLE"):
                    idle = await client.idle_start(timeout=s.imap_poll_s)
                    with contextlib.suppress(TimeoutError):
                        await client.wait_server_push(timeout=s.imap_poll_s)
                    client.idle_done()
                    await asyncio.wait_for(idle, 30)
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), s.imap_poll_s)
        finally:
            # Stopping may interrupt IDLE: end it, and do not wait long for a polite LOGOUT.
            with contextlib.suppress(Exception):
                if client.has_pending_idle():
                    client.idle_done()
                await asyncio.wait_for(client.logout(), 2)

    async def fetch_unseen(self, client: Any) -> int:
        """Fetch unseen messages without marking them (BODY.PEEK); mark \\Seen only after they are on the bus,
        so a crash re-fetches rather than loses (the event id keeps it one event)."""
        found = await client.uid_search("UNSEEN")
        uids = [u for line in found.lines[:1] for u in line.decode().split() if u.isdigit()]
        for uid in uids:
            fetched = await client.uid("fetch", uid, "(BODY.PEEK[])")
            raw = next((bytes(line) for line in fetched.lines if isinstance(line, bytearray)), None)
            if raw is None:
                continue
            await self.accept(raw, "imap")
            await client.uid("store", uid, "+FLAGS", "(\\Seen)")
        return len(uids)

    # -- inbound-parse webhook ----------------------------------------------------------------------------
    def routes(self) -> APIRouter:
        router = APIRouter(tags=["webhooks"])

        @router.post("/webhooks/email/inbound")
        async def inbound(request: Request) -> dict[str, str]:
            """Multipart form as inbound-parse services send it: ``timestamp``, ``token``, ``signature`` (hex
            HMAC-SHA256 of timestamp+token, Mailgun's scheme) and the message as raw MIME (``body-mime`` or
            ``email``) or as parsed fields (``from``/``sender``, ``to``/``recipient``, ``subject``,
            ``body-plain``/``text``, ``body-html``/``html``, ``Message-Id``, ``In-Reply-To``, ``References``).
            A relay that can sign the body sends ``X-Switchboard-Signature`` instead (see
            ``services/connectors/signatures.py``). Either way the signed time must be within
            SWITCHBOARD_EMAIL_WEBHOOK_MAX_AGE_S and a signed token carries one message only: a captured request
            cannot be replayed, with its body or another."""
            body = await request.body()
            form = await request.form()
            key = self.settings.email_webhook_signing_key
            now, max_age = time.time(), self.settings.email_webhook_max_age_s
            header = request.headers.get("x-switchboard-signature")
            if key is None:
                raise HTTPException(401, "missing webhook signature")
            if header is not None:
                if not switchboard_body_valid(key.get_secret_value(), body, header, now, max_age):
                    raise HTTPException(403, "bad or stale webhook signature")
                token = header
            else:
                ts, token, sig = (str(form.get(k, "")) for k in ("timestamp", "token", "signature"))
                if not (ts and token and sig):
                    raise HTTPException(401, "missing webhook signature")
                if not email_webhook_valid(key.get_secret_value(), ts, token, sig) or not fresh(ts, now, max_age):
                    raise HTTPException(403, "bad or stale webhook signature")
            raw_field = form.get("body-mime") or form.get("email")
            if raw_field is not None:
                raw = raw_field.encode() if isinstance(raw_field, str) else await raw_field.read()
            else:
                raw = await _mime_from_fields(form)
            seen = self._tokens.check(token, raw)
            if seen is Seen.REPLAY:
                raise HTTPException(403, "this signed token was used for another message")
            if seen is Seen.RETRY:
                return {"status": "duplicate"}
            return {"status": await self.accept(raw, "webhook", provider_id=f"webhook-token:{token}")}

        return router

    # -- outbound ------------------------------------------------------------------------------------------
    def compose(self, message: OutboundMessage) -> EmailMessage:
        s = self.settings
        mail = EmailMessage()
        mail["From"] = s.email_from
        mail["To"] = message.to.value
        subject = message.subject or "Your conversation with us"
        mail["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}"
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(idstring=message.id.replace("-", ""), domain=s.email_reply_domain)
        local, _, _ = s.email_from.partition("@")
        mail["Reply-To"] = formataddr(("", f"{local}+{message.conversation_id}@{s.email_reply_domain}"))
        if message.in_reply_to:  # RFC 5322 §3.6.4
            mail["In-Reply-To"] = message.in_reply_to
            refs = (
                [*message.references, message.in_reply_to]
                if message.in_reply_to not in message.references
                else message.references
            )
            mail["References"] = " ".join(refs)
        mail["Auto-Submitted"] = "no"
        mail.set_content(message.text)
        return mail

    async def deliver(self, message: OutboundMessage) -> Delivered:
        s = self.settings
        mail = self.compose(message)
        try:
            await aiosmtplib.send(
                mail,
                hostname=s.smtp_relay_host,
                port=s.smtp_relay_port,
                username=s.smtp_relay_username,
                password=s.smtp_relay_password.get_secret_value() if s.smtp_relay_password else None,
                start_tls=s.smtp_relay_starttls,
                timeout=30,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise PermanentFailure(f"recipient refused: {exc}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600:
                raise PermanentFailure(f"smtp {exc.code}: {exc.message}") from exc
            raise TransientFailure(f"smtp {exc.code}: {exc.message}") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise TransientFailure(repr(exc)) from exc
        return Delivered(str(mail["Message-ID"]))


async def _mime_from_fields(form: Any) -> bytes:
    mail = EmailMessage()
    for header, names in (
        ("From", ("from", "sender")),
        ("To", ("to", "recipient")),
        ("Subject", ("subject",)),
        ("Message-ID", ("Message-Id", "message-id")),
        ("In-Reply-To", ("In-Reply-To",)),
        ("References", ("References",)),
        ("Date", ("Date",)),
    ):
        value = next((str(form[n]) for n in names if form.get(n)), None)
        if value:
            mail[header] = value
    plain = form.get("body-plain") or form.get("text")
    html = form.get("body-html") or form.get("html")
    mail.set_content(str(plain or ""))
    if html:
        mail.add_alternative(str(html), subtype="html")
    for key, value in form.multi_items():
        if key.startswith("attachment") and hasattr(value, "read"):
            data = await value.read()
            maintype, _, subtype = (value.content_type or "application/octet-stream").partition("/")
            mail.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream", filename=value.filename)
    return mail.as_bytes()
