"""Email fetched from a real IMAP server (Dovecot): unseen mail becomes one event each, marked \\Seen only once
it is on the bus; fetching it again makes no second event."""

from __future__ import annotations

import asyncio
import imaplib
from email.message import EmailMessage
from pathlib import Path

import aioimaplib

from services.connectors.channels.email import EmailConnector
from shared.bus_memory import MemoryBus
from shared.events import Channel
from tests.support.dovecot import Imap, dovecot
from tests.support.runtime import conversation_of, wait_for
from tests.support.system import system


def deliver(imap: Imap, subject: str, message_id: str) -> None:
    mail = EmailMessage()
    mail["From"] = "Casey <casey@example.org>"
    mail["To"] = "support@acme.test"
    mail["Subject"] = subject
    mail["Message-ID"] = message_id
    mail.set_content(f"{subject} body\n\nOn Mon, Support wrote:\n> older text")
    with imaplib.IMAP4("127.0.0.1", imap.port) as client:
        client.login(imap.user, imap.password)
        client.append("INBOX", "", imaplib.Time2Internaldate(0), mail.as_bytes())


def seen_flags(imap: Imap) -> list[bytes]:
    with imaplib.IMAP4("127.0.0.1", imap.port) as client:
        client.login(imap.user, imap.password)
        client.select("INBOX")
        _, data = client.search(None, "UNSEEN")
        return data[0].split()


async def test_imap_polling_turns_unseen_mail_into_events_once(tmp_path: Path) -> None:
    with dovecot(tmp_path / "dovecot") as imap:
        deliver(imap, "First by IMAP", "<imap-1@example.org>")
        deliver(imap, "Second by IMAP", "<imap-2@example.org>")
        async with system(
            "embedded",
            tmp_path,
            names=("email",),
            imap_host=imap.host,
            imap_port=imap.port,
            imap_ssl=False,
            imap_username=imap.user,
            imap_password=imap.password,
            imap_poll_s=0.5,
        ) as s:
            for n in (1, 2):
                conv = await wait_for(
                    lambda n=n: conversation_of(s.desk, s.connectors.event_id(Channel.EMAIL, f"<imap-{n}@example.org>"))
                )
            assert conv["messages"][-1]["text"] == "Second by IMAP body"
            assert conv["messages"][0]["subject"] == "First by IMAP"
            await wait_for(lambda: asyncio.to_thread(lambda: not seen_flags(imap)))
            # new mail while connected is picked up too (IDLE push or the next poll)
            deliver(imap, "Third by IMAP", "<imap-3@example.org>")
            await wait_for(
                lambda: conversation_of(s.desk, s.connectors.event_id(Channel.EMAIL, "<imap-3@example.org>"))
            )
            assert isinstance(s.desk.bus, MemoryBus)
            events = len(s.desk.bus.records(s.desk.router.topics.events))

            # the same messages fetched again (flags reset, as after a crash before \\Seen) make no new event
            client = aioimaplib.IMAP4(host=imap.host, port=imap.port)
            await client.wait_hello_from_server()
            await client.login(imap.user, imap.password)
            await client.select("INBOX")
            await client.uid("store", "1:*", "-FLAGS", "(\\Seen)")
            email = next(c for c in s.connectors.connectors if isinstance(c, EmailConnector))
            assert await email.fetch_unseen(client) == 3
            await client.logout()
            assert len(s.desk.bus.records(s.desk.router.topics.events)) == events
