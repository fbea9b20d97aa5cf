"""Parsing inbound email (RFC 5322 / MIME) with the standard library's modern ``email.policy.default``:
multipart/alternative, HTML-only mail (to text), charsets and encoded words, attachments, threading headers,
auto-reply detection, and the clean text an agent reads (quoted history and signature stripped, by
mail-parser-reply)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser

from mailparser_reply import EmailReplyParser

from shared.events import Automated

_MSGID = re.compile(r"<[^<>\s]+>")
_BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "hr"}


@dataclass
class ParsedEmail:
    message_id: str
    from_address: str
    from_name: str | None
    to: list[str]
    subject: str | None
    text: str  # what the customer wrote this time: no quoted history, no signature
    full_text: str
    html: str | None
    in_reply_to: str | None
    references: list[str]
    date: datetime | None
    auto_reply: bool  # machine mail the connector drops
    reply_token: str | None  # from a reply+<token>@<our domain> recipient
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)  # name, content type, bytes
    automated: Automated | None = None  # why no person wrote it, or why it must not be answered automatically

    @property
    def thread_root(self) -> str | None:
        """RFC 5322 §3.6.4: the first References entry is the thread's root; else what it replies to."""
        return self.references[0] if self.references else self.in_reply_to


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in ("script", "style", "head", "title"):
            self._skip += 1
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head", "title"):
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts).replace("\xa0", " ")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def latest_reply(text: str) -> str:
    """The new part of a reply: without "On … wrote:" history, Outlook headers, "> " quotes, signatures."""
    try:
        replies = EmailReplyParser(languages=["en", "de", "fr", "es", "it", "nl"]).read(text=text).replies
    except Exception:  # the parser is heuristic; never lose a message over it
        return text.strip()
    body = replies[0].body.strip() if replies else ""
    return body or text.strip()


def _ids(value: str | None) -> list[str]:
    return _MSGID.findall(value or "")


# Mail a person may have written but that must not be answered automatically: carried to the desk, marked.
# Everything else ``automated`` finds is machine mail an agent has nothing to do with: dropped at the edge.
CARRIED = frozenset({Automated.LIST})


def automated(msg: EmailMessage) -> Automated | None:
    """Why no person wrote this mail, or why it must not be answered automatically: RFC 3834 Auto-Submitted,
    delivery and disposition reports (RFC 3464 / 8098 multipart/report, or a null reverse path: RFC 5321
    §4.5.5), the de-facto headers of vacation responders, bulk and list mail (Precedence, RFC 2919 List-Id)."""
    auto = str(msg.get("Auto-Submitted", "no")).strip().lower()
    if msg.get_content_type() == "multipart/report" or str(msg.get("Return-Path", "")).strip() == "<>":
        return Automated.BOUNCE
    if auto.startswith("auto-replied") or any(h in msg for h in ("X-Autoreply", "X-Autorespond")):
        return Automated.AUTO_REPLIED
    if (auto and auto != "no") or "X-Auto-Response-Suppress" in msg:
        return Automated.AUTO_GENERATED
    precedence = str(msg.get("Precedence", "")).strip().lower()
    if precedence == "auto_reply":
        return Automated.AUTO_REPLIED
    if precedence in ("bulk", "junk"):
        return Automated.BULK
    if precedence == "list" or "List-Id" in msg:
        return Automated.LIST
    return None


def parse(raw: bytes, reply_domain: str = "") -> ParsedEmail:
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    senders = getaddresses([str(msg.get("From", ""))])
    name, address = senders[0] if senders else ("", "")
    if "@" not in address:
        sender = str(msg.get("Sender") or msg.get("Return-Path") or "")
        address = getaddresses([sender])[0][1] if sender else ""
    if "@" not in address:
        raise ValueError("no sender address")
    recipients = [
        a for _, a in getaddresses([str(v) for h in ("To", "Cc", "Delivered-To") for v in msg.get_all(h, [])]) if a
    ]

    plain = msg.get_body(preferencelist=("plain",))
    html_part = msg.get_body(preferencelist=("html",))
    html = html_part.get_content() if html_part is not None else None
    if plain is not None:
        full_text = plain.get_content()
    elif html is not None:
        full_text = html_to_text(html)
    else:
        full_text = ""
    attachments = []
    for part in msg.iter_attachments():
        data = part.get_payload(decode=True)
        if isinstance(data, bytes):
            attachments.append((part.get_filename() or "attachment", part.get_content_type(), data))
        elif part.get_content_type() == "message/rfc822":  # a forwarded message, kept whole
            inner = part.get_payload(0) if part.is_multipart() else part.get_payload()
            attachments.append(
                ("forwarded.eml", "message/rfc822", inner.as_bytes() if hasattr(inner, "as_bytes") else b"")
            )

    token = None
    if reply_domain:
        for addr in recipients:
            local, _, domain = addr.partition("@")
            if domain.lower() == reply_domain.lower() and "+" in local:
                token = local.split("+", 1)[1]
                break
    message_id = (_ids(str(msg.get("Message-ID", ""))) or [""])[0]
    if not message_id:  # some senders omit it: a content hash keeps redelivery idempotent
        message_id = f"<sha256-{hashlib.sha256(raw).hexdigest()[:32]}@switchboard.invalid>"
    try:
        date = parsedate_to_datetime(str(msg["Date"])) if msg.get("Date") else None
    except (TypeError, ValueError):
        date = None
    if date is not None and date.tzinfo is None:
        date = None
    subject = str(msg.get("Subject", "")).strip() or None
    kind = automated(msg)
    return ParsedEmail(
        message_id=message_id,
        from_address=address,
        from_name=name or None,
        to=recipients,
        subject=subject[:998] if subject else None,
        text=latest_reply(full_text) if full_text else "",
        full_text=full_text,
        html=html,
        in_reply_to=next(iter(_ids(str(msg.get("In-Reply-To", "")))), None),
        references=_ids(str(msg.get("References", ""))),
        date=date,
        auto_reply=kind is not None and kind not in CARRIED,
        reply_token=token,
        attachments=attachments,
        automated=kind,
    )
