"""Mail no person wrote, told apart by its headers: auto-replies and bounces are dropped at the edge (answering
them starts loops), list mail is carried to the desk marked ``automated`` so nothing answers it automatically."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import orjson
import pytest

from services.connectors.blobs import BlobStore
from services.connectors.channels.email import to_event
from services.connectors.channels.email_mime import parse
from shared.events import Automated, decode_event, encode_event

EMAILS = Path(__file__).parents[1] / "emails"
GOLDEN = Path(__file__).parents[1] / "golden"


def mail(*headers: tuple[str, str], report: bool = False) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "Sam <sam@example.com>", "support@acme.test", "Hello"
    m["Message-ID"] = "<h1@mail.example.com>"
    for name, value in headers:
        m[name] = value
    m.set_content("Where is my order?")
    if report:
        m.make_mixed()
        m.replace_header("Content-Type", 'multipart/report; report-type=delivery-status; boundary="b"')
    return m.as_bytes()


@pytest.mark.parametrize(
    ("headers", "kind", "dropped"),
    [
        ((), None, False),
        ((("Auto-Submitted", "no"),), None, False),
        ((("Auto-Submitted", "auto-replied"),), Automated.AUTO_REPLIED, True),
        ((("Auto-Submitted", "Auto-Replied; owner-email=x@example.com"),), Automated.AUTO_REPLIED, True),
        ((("Auto-Submitted", "auto-generated"),), Automated.AUTO_GENERATED, True),
        ((("X-Autoreply", "yes"),), Automated.AUTO_REPLIED, True),
        ((("X-Autorespond", "Out of office"),), Automated.AUTO_REPLIED, True),
        ((("X-Auto-Response-Suppress", "All"),), Automated.AUTO_GENERATED, True),
        ((("Precedence", "auto_reply"),), Automated.AUTO_REPLIED, True),
        ((("Precedence", "bulk"),), Automated.BULK, True),
        ((("Precedence", "junk"),), Automated.BULK, True),
        ((("Precedence", "list"),), Automated.LIST, False),
        ((("List-Id", "<users.lists.example.org>"),), Automated.LIST, False),
        ((("Precedence", "bulk"), ("List-Id", "<news.example.org>")), Automated.BULK, True),
        ((("Return-Path", "<>"),), Automated.BOUNCE, True),
        ((("Return-Path", "<sam@example.com>"),), None, False),
    ],
)
def test_headers_say_who_wrote_the_mail_and_whether_it_reaches_the_desk(
    headers: tuple[tuple[str, str], ...], kind: Automated | None, dropped: bool
) -> None:
    parsed = parse(mail(*headers))
    assert (parsed.automated, parsed.auto_reply) == (kind, dropped)


def test_a_delivery_report_is_a_bounce_even_without_auto_submitted() -> None:
    parsed = parse(mail(report=True))
    assert (parsed.automated, parsed.auto_reply) == (Automated.BOUNCE, True)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("12_auto_reply.eml", Automated.AUTO_REPLIED),
        ("21_bounce.eml", Automated.BOUNCE),
        ("22_mailing_list.eml", Automated.BULK),
    ],
)
def test_the_corpus_auto_reply_bounce_and_digest_are_dropped(name: str, kind: Automated) -> None:
    parsed = parse((EMAILS / name).read_bytes())
    assert (parsed.automated, parsed.auto_reply) == (kind, True)


def test_list_mail_travels_marked_and_a_persons_mail_unmarked(tmp_path: Path) -> None:
    blobs = BlobStore(str(tmp_path))
    listed = to_event(parse(mail(("List-Id", "<users.lists.example.org>"))), b"raw", "demo", lambda *_: "e1", blobs)
    person = to_event(parse(mail()), b"raw", "demo", lambda *_: "e2", blobs)
    assert decode_event(encode_event(listed)).automated is Automated.LIST
    assert person.automated is None and b"automated" not in encode_event(person), "absent, not null, on the wire"


def test_an_event_from_before_the_field_reads_as_written_by_a_person() -> None:
    doc = orjson.loads((GOLDEN / "email_list.json").read_bytes())
    del doc["automated"]
    assert decode_event(orjson.dumps(doc)).automated is None
    assert decode_event((GOLDEN / "email_list.json").read_bytes()).automated is Automated.LIST
