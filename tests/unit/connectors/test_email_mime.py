"""Inbound email parsing over a corpus of real-world-shaped MIME messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.connectors.channels.email_mime import html_to_text, latest_reply, parse

CORPUS = sorted((Path(__file__).parents[1] / "emails").glob("*.eml"))


def load(name: str):  # type: ignore[no-untyped-def]
    return parse((Path(__file__).parents[1] / "emails" / name).read_bytes(), "switchboard.localhost")


def test_the_corpus_has_at_least_twenty_messages() -> None:
    assert len(CORPUS) >= 20


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_every_corpus_message_parses_with_a_sender_an_id_and_text(path: Path) -> None:
    mail = parse(path.read_bytes(), "switchboard.localhost")
    assert "@" in mail.from_address
    assert mail.message_id.startswith("<") and mail.message_id.endswith(">")
    assert mail.text.strip() or mail.attachments


def test_plain_text() -> None:
    mail = load("01_plain.eml")
    assert (mail.from_address, mail.from_name, mail.subject) == ("sam@example.com", "Sam Doe", "Where is my order?")
    assert "order #1234" in mail.text and mail.message_id == "<plain-1@mail.example.com>"


def test_alternative_prefers_plain_and_keeps_html() -> None:
    mail = load("02_alternative.eml")
    assert mail.text == "¿Dónde está mi pedido?" and "<b>mi pedido</b>" in (mail.html or "")
    assert mail.from_name == "Ana García"


def test_html_only_becomes_readable_text_without_scripts_or_styles() -> None:
    mail = load("03_html_only.eml")
    assert mail.text.splitlines() == ["Line one", "Line two & more", "", "End"] or mail.text.split() == [
        "Line",
        "one",
        "Line",
        "two",
        "&",
        "more",
        "End",
    ]
    assert "alert" not in mail.text and "color" not in mail.text


@pytest.mark.parametrize(
    ("name", "subject", "fragment"),
    [
        ("04_base64.eml", "Überweisung fällig", "Die Überweisung ist fällig"),
        ("05_quoted_printable.eml", "Résumé de ma commande", "n'est pas arrivée"),
        ("06_windows1252.eml", "Smart quotes", "It\u2019s \u201cbroken\u201d \u2013 please help\u2026"),
        ("07_shift_jis.eml", None, "注文が届いていません。"),
        ("08_gb2312.eml", "订单", "我的订单还没有到。"),
        ("09_koi8r.eml", "заказ", "Мой заказ не пришёл."),
        ("24_utf8_headers_8bit.eml", "Grüße 👋", "Grüße aus München 👋"),
    ],
)
def test_charsets_and_encoded_words_decode(name: str, subject: str | None, fragment: str) -> None:
    mail = load(name)
    if subject:
        assert mail.subject == subject
    assert fragment in mail.text


def test_attachments_are_kept_with_name_type_and_bytes() -> None:
    mail = load("10_attachment.eml")
    assert [(n, t) for n, t, _ in mail.attachments] == [
        ("receipt.pdf", "application/pdf"),
        ("photo of boxé.png", "image/png"),
    ]
    assert mail.attachments[0][2].startswith(b"%PDF")
    assert mail.text == "Here is my receipt."


def test_forwarded_message_is_kept_whole_as_an_attachment() -> None:
    mail = load("11_forwarded.eml")
    assert mail.text == "Please look at the message below."
    assert [(n, t) for n, t, _ in mail.attachments] == [("forwarded.eml", "message/rfc822")]
    assert b"Your product broke." in mail.attachments[0][2]


@pytest.mark.parametrize("name", ["12_auto_reply.eml", "21_bounce.eml", "22_mailing_list.eml"])
def test_auto_replies_bounces_and_bulk_mail_are_recognised(name: str) -> None:
    assert load(name).auto_reply


@pytest.mark.parametrize("name", ["01_plain.eml", "13_gmail_reply.eml", "14_outlook_reply.eml"])
def test_human_mail_is_not_an_auto_reply(name: str) -> None:
    assert not load(name).auto_reply


def test_gmail_reply_loses_the_quoted_history_and_keeps_threading() -> None:
    mail = load("13_gmail_reply.eml")
    assert mail.text == "Thanks, it arrived today!"
    assert "Tracking" in mail.full_text, "the full body is kept"
    assert mail.in_reply_to == "<sb-out-1@switchboard.localhost>"
    assert mail.references == ["<plain-1@mail.example.com>", "<sb-out-1@switchboard.localhost>"]
    assert mail.thread_root == "<plain-1@mail.example.com>"


def test_outlook_reply_loses_the_original_message_block() -> None:
    mail = load("14_outlook_reply.eml")
    assert mail.text.startswith("That answers it, thank you.")
    assert "Original Message" not in mail.text and "corrected" not in mail.text


@pytest.mark.parametrize(
    ("name", "kept", "dropped"),
    [
        ("15_iphone_signature.eml", "Can I change my delivery address?", "Sent from my iPhone"),
        ("16_signature_dashes.eml", "I would like a refund for order 77.", "Head of Things"),
    ],
)
def test_signatures_are_stripped(name: str, kept: str, dropped: str) -> None:
    mail = load(name)
    assert mail.text == kept and dropped not in mail.text


def test_inline_images_in_related_parts() -> None:
    mail = load("17_related_inline.eml")
    assert mail.text == "See the screenshot."


def test_missing_message_id_gets_a_stable_content_hash() -> None:
    a, b = load("18_no_message_id.eml"), load("18_no_message_id.eml")
    assert a.message_id == b.message_id and a.message_id.startswith("<sha256-")


def test_folded_headers_unfold() -> None:
    mail = load("19_folded_headers.eml")
    assert mail.subject == (
        "A subject line that is long enough that it was folded onto a second line by the sending mail client"
    )
    assert mail.references == ["<a@example.com>", "<b@example.com>", "<c@example.com>"]
    assert mail.to == ["support@acme.test", "other@acme.test"]


def test_reply_token_in_our_reply_address_names_the_conversation() -> None:
    mail = load("23_reply_token.eml")
    assert mail.reply_token == "3f1c2a9e-0000-4000-8000-000000000001"
    assert load("01_plain.eml").reply_token is None


def test_no_sender_is_an_error() -> None:
    with pytest.raises(ValueError):
        parse(b"Subject: nobody\r\n\r\nhello\r\n")


def test_html_to_text_and_latest_reply_helpers() -> None:
    assert html_to_text("<p>a</p><p>b<br>c</p>").split() == ["a", "b", "c"]
    assert latest_reply("new\n\nOn Tue, X wrote:\n> old") == "new"
