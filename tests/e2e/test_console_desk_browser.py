"""The console's inbox and supervisor screens in a real browser (Debian's Chromium driven by Playwright),
against an in-process embedded desk that serves the desk views (entrypoints/http/desk_views.py):

- a manual queue's waiting list shows who waits (name, last message, SLA) → Claim → the conversation opens
  with its customer's profile → reply → resolve → it is read-only (no reply, resolve or transfer);
- the supervisor screen shows queues, agents' presence and load, SLA breaches live, and a duplicate-customer
  suggestion that the supervisor merges.

At a desktop (1280 x 800) and a phone (390 x 844) width. Screenshots go to SWITCHBOARD_TEST_ARTIFACTS (default
.local/artifacts); with SWITCHBOARD_UPDATE_DOCS=1 the desktop ones also replace docs/console.png and
docs/console-supervisor.png (each kept under 250 KB)."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, Dialog, Page, expect

from services.router.entrypoints.http import desk_views
from services.router.entrypoints.http.app import create_app
from shared.events import Channel, Claim, IdentityKind
from tests.conftest import random_name
from tests.support.browser import ARTIFACTS
from tests.support.pii import pii
from tests.support.processes import ROOT
from tests.support.runtime import Desk, arrive, embedded_desk, inbound, serve_app

DOCS = ROOT / "docs" if os.environ.get("SWITCHBOARD_UPDATE_DOCS") == "1" else None
MAX_SCREENSHOT_BYTES = 250_000
WIDTHS = pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 844)], ids=["desktop", "phone"])


def app_with_desk_views(desk: Desk) -> FastAPI:
    """The router's app, with the desk views included unless app.py includes them already."""
    app = create_app(desk.router, manage_lifecycle=False)
    if not any(getattr(r, "path", "").startswith("/v1/desk/") for r in app.routes):
        app.include_router(desk_views.router)
    return app


desk = embedded_desk


@pytest.fixture
async def base(desk: Desk) -> AsyncIterator[str]:
    async with serve_app(app_with_desk_views(desk)) as url:
        yield url


async def admin(desk: Desk, base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, timeout=10, headers={"Authorization": f"Bearer {desk.key}"})


async def route_messaging(desk: Desk, base: str, **routing: object) -> str:
    queue = f"{desk.tenant}-q-messaging"
    async with await admin(desk, base) as http:
        r = await http.patch(f"/v1/queues/{queue}", json={"routing": routing})
        assert r.status_code == 200, r.text
    return queue


async def sign_in(page: Page, base: str, desk: Desk) -> None:
    await page.goto(f"{base}/console")
    await expect(page.locator("#desk")).to_be_hidden()  # nothing of the desk before sign-in
    await page.get_by_label("API key (dev token)").fill(desk.key)
    await page.get_by_role("button", name="Load agents").click()
    await page.get_by_label("Agent", exact=True).select_option(desk.agent())
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#who")).to_contain_text("Ada Lovelace")


async def fits_the_screen(page: Page) -> None:
    """Nothing wider than the viewport: wide tables scroll inside their panel instead of being clipped."""
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the screen"


async def screenshot(page: Page, name: str, width: int) -> None:
    await fits_the_screen(page)
    os.makedirs(ARTIFACTS, exist_ok=True)
    path = ARTIFACTS / f"{name}-{width}.png"
    await page.screenshot(path=str(path))
    assert path.stat().st_size < MAX_SCREENSHOT_BYTES, f"{path} is {path.stat().st_size} bytes"
    if DOCS is not None and width >= 1000:
        (DOCS / f"{name}.png").write_bytes(path.read_bytes())


@WIDTHS
async def test_claim_from_the_waiting_list_then_resolve_leaves_it_read_only(
    desk: Desk, base: str, browser: Browser, width: int, height: int
) -> None:
    await route_messaging(desk, base, strategy="manual", sla={"first_response_s": {"in_app": 900}})
    question = pii("Where is my parcel? It was due on Monday.")
    answer = pii("It left our warehouse this morning.")
    waiting = inbound(desk.tenant, random_name("u-"), question, name=pii("Marie Curie"))
    conv = await arrive(desk, waiting)
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    await sign_in(page, base, desk)

    await page.get_by_role("tab", name="Waiting").click()
    row = page.locator(f'#waiting li[data-conversation="{conv["id"]}"]')
    await expect(row).to_contain_text("Marie Curie")
    await expect(row).to_contain_text(question)
    await expect(row.locator(".sla")).to_contain_text("SLA 1")  # 15 minutes, counting down
    await row.get_by_role("button", name="Claim").click()

    await expect(page.locator("#conv-title")).to_contain_text("Marie Curie")
    await expect(page.locator("#timeline")).to_contain_text(question)
    await expect(page.locator("#profile")).to_contain_text("Marie Curie")
    await expect(page.locator(f'#mine li[data-conversation="{conv["id"]}"]')).to_have_count(1)
    await page.get_by_label("Reply", exact=True).fill(answer)
    await page.get_by_role("button", name="Send").click()
    await expect(page.locator("#conv-status")).to_have_text("Reply sent.")
    await expect(page.locator("#timeline")).to_contain_text(answer)
    await screenshot(page, "console", width)

    await page.get_by_label("Resolution note").fill(pii("Tracking link sent"))
    await page.get_by_role("button", name="Resolve").click()
    await expect(page.locator("#conv-status")).to_contain_text("Resolved")
    await expect(page.locator("#readonly-note")).to_contain_text("resolved")
    await expect(page.locator("#conv-state")).to_have_text("resolved")
    for control in ("Reply", "Resolution note", "Transfer to"):
        await expect(page.get_by_label(control, exact=True)).to_be_disabled()
        await expect(page.get_by_label(control, exact=True)).to_be_hidden()
    await expect(page.locator(f'#mine li[data-conversation="{conv["id"]}"]')).to_have_count(0)
    # after a reload it is gone from the list: resolved work is not waiting for anyone
    await page.reload()
    await expect(page.locator("#who")).to_contain_text("Ada Lovelace")
    await expect(page.locator("#mine")).to_contain_text("Nothing assigned")
    await context.close()


@WIDTHS
async def test_the_supervisor_sees_queues_agents_sla_breaches_and_merges_a_suggestion(
    desk: Desk, base: str, browser: Browser, width: int, height: int
) -> None:
    await route_messaging(desk, base, strategy="manual", sla={"first_response_s": {"in_app": 1, "chat": 1}})
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    await sign_in(page, base, desk)
    await page.get_by_role("link", name="Supervisor").click()
    await expect(page.locator("#supervisor")).to_be_visible()
    await expect(page.locator("#desk")).to_be_hidden()
    await expect(page.locator("body")).to_have_attribute("data-supervisor-feed", "open")

    email = pii(f"{random_name('lin-')}@example.com")
    mail = inbound(
        desk.tenant,
        email,
        pii("Invoice question"),
        channel=Channel.EMAIL,
        kind=IdentityKind.EMAIL,
        name=pii("Lin Chen"),
    )
    chat = inbound(
        desk.tenant,
        random_name("visitor-"),
        pii("Hello, anyone there?"),
        channel=Channel.CHAT,
        kind=IdentityKind.CHAT_VISITOR,
        claims=(Claim(kind=IdentityKind.EMAIL, value=email, verified=False),),
        name=pii("Lin C."),
    )
    survivor = await arrive(desk, mail)
    duplicate = await arrive(desk, chat)

    # the chat waits in the manual queue and breaches its 1 s first-response SLA: it shows up live
    risk = page.locator(f'#sup-sla li[data-conversation="{duplicate["id"]}"]')
    await expect(risk).to_contain_text("Lin C.", timeout=20_000)
    await expect(risk.locator(".sla")).to_contain_text("SLA over by")
    await expect(page.locator("#sup-queues")).to_contain_text("Messaging")
    await expect(page.locator("#sup-queues tr", has_text="Messaging").locator("td").first).to_have_text("1")
    ada = page.locator(f'#sup-agents tr[data-agent="{desk.agent()}"]')
    await expect(ada).to_contain_text("online")
    await expect(ada).to_contain_text("1 email")
    pair = page.locator("#sup-dupes li[data-pair]")
    await expect(pair).to_have_count(1)
    await expect(pair).to_contain_text("Lin Chen")
    await expect(pair).to_contain_text("Lin C.")
    await screenshot(page, "console-supervisor", width)

    async def accept(dialog: Dialog) -> None:
        await dialog.accept()

    page.once("dialog", accept)
    await pair.get_by_role("button", name="Merge into Lin Chen").click()  # the older customer survives
    await expect(page.locator("#dupes-status")).to_contain_text("Merged")
    await expect(page.locator("#sup-dupes li[data-pair]")).to_have_count(0)
    async with await admin(desk, base) as http:
        merged = (await http.get(f"/v1/customers/{duplicate['customer_id']}")).json()
    assert merged["merged_into"] == survivor["customer_id"]
    await context.close()


async def test_a_whatsapp_conversation_shows_how_long_free_text_can_still_go(
    desk: Desk, base: str, browser: Browser
) -> None:
    await route_messaging(desk, base, strategy="manual")
    phone = "+3161234" + random_name("")[-4:].translate(str.maketrans("abcdef", "123456"))
    message = inbound(
        desk.tenant, phone, pii("Can I change my delivery address?"), channel=Channel.WHATSAPP, kind=IdentityKind.PHONE
    )
    conv = await arrive(desk, message)
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    await sign_in(page, base, desk)
    await page.get_by_role("tab", name="Waiting").click()
    await page.locator(f'#waiting li[data-conversation="{conv["id"]}"]').get_by_role("button", name="Claim").click()
    # the customer wrote just now: the 24-hour customer service window has a day left, counted in hours
    await expect(page.locator("#profile")).to_contain_text("WhatsApp window")
    await expect(page.locator("#profile")).to_contain_text(re.compile(r"2[34] h \d{1,2} min left"))
    await context.close()
