"""The whole loop in a real browser (Debian's Chromium driven by Playwright) against `switchboard dev`:
a customer writes in the chat widget → the agent sees the offer in the console → accepts → replies → the
customer sees the reply (and still after a reload) → the agent resolves → the customer answers the CSAT card
→ the stats API counts it. At a desktop width and at a 390 px phone width; screenshots of both pages are
saved as artifacts (SWITCHBOARD_TEST_ARTIFACTS, default .local/artifacts)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.support.browser import ARTIFACTS
from tests.support.http import http_client
from tests.support.pii import pii
from tests.support.processes import dev_desk

KEY = "sb_console-" + os.urandom(12).hex()


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with dev_desk(tmp_path_factory.mktemp("console"), KEY) as base:
        yield base


async def sign_in(console: Page, base: str) -> None:
    await console.goto(f"{base}/console")
    await console.get_by_label("API key (dev token)").fill(KEY)
    await console.get_by_role("button", name="Load agents").click()
    await console.get_by_label("Agent", exact=True).select_option("agent-ada")
    await console.get_by_role("button", name="Sign in").click()
    await expect(console.locator("#who")).to_contain_text("Ada Lovelace")


@pytest.mark.parametrize(("width", "height"), [(1280, 860), (390, 844)], ids=["desktop", "phone"])
async def test_widget_to_console_and_back_with_csat(desk: str, browser: Browser, width: int, height: int) -> None:
    base = desk
    viewport = {"width": width, "height": height}
    customer_ctx = await browser.new_context(viewport=viewport)
    agent_ctx = await browser.new_context(viewport=viewport)
    customer, console = await customer_ctx.new_page(), await agent_ctx.new_page()
    question = pii(f"My tent pole snapped ({uuid.uuid4().hex[:6]})")
    answer = pii("A new pole is on its way, free of charge.")

    await sign_in(console, base)
    await customer.goto(f"{base}/demo")
    await customer.get_by_role("button", name="Chat with us").click()
    await customer.get_by_label("Your message").fill(question)
    await customer.get_by_label("Your message").press("Enter")

    # the offer arrives live on the console; the agent accepts and opens it
    offer = console.locator("#offers li[data-conversation]")
    await expect(offer).to_have_count(1, timeout=10_000)
    # the offer holds a chat's unit of Ada's "Standard" profile (3 units)
    await expect(console.locator("#load")).to_have_text("Load: 1 of 3 units", timeout=10_000)
    await offer.get_by_role("button", name="Accept").click()
    mine = console.locator("#mine li[data-conversation]")
    await expect(mine).to_have_count(1, timeout=10_000)
    await mine.get_by_role("button").click()
    await expect(console.locator("#timeline")).to_contain_text(question)
    await console.get_by_label("Reply", exact=True).fill(answer)
    await console.get_by_role("button", name="Send").click()
    await expect(console.locator("#conv-status")).to_have_text("Reply sent.")

    # the customer sees the reply live, and still after a reload
    await expect(customer.locator(".sbw-them").filter(has_text=answer)).to_be_visible(timeout=10_000)
    await customer.reload()
    await expect(customer.locator(".sbw-them").filter(has_text=answer)).to_be_visible()
    await expect(customer.locator(".sbw-me").filter(has_text=question)).to_be_visible()

    await console.get_by_label("Resolution note").fill("Shipped a replacement pole")
    await console.get_by_role("button", name="Resolve").click()
    await expect(console.locator("#conv-status")).to_contain_text("Resolved")

    card = customer.locator(".sbw-card")
    await expect(card).to_be_visible(timeout=10_000)
    await card.get_by_role("button", name="Rate 5 of 5").click()
    await expect(card).to_contain_text("Thank you! You rated us 5.")

    async with http_client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}) as http:
        kpis = (await http.get("/v1/stats/kpis")).json()["items"][0]
    assert kpis["csat_avg"] == 5.0 and kpis["csat_response_rate"] == 1.0

    await console.locator("#kpis").scroll_into_view_if_needed()
    await expect(console.locator("#kpis")).to_contain_text("CSAT 5", timeout=10_000)
    os.makedirs(ARTIFACTS, exist_ok=True)
    await console.screenshot(path=str(ARTIFACTS / f"console-{width}.png"), full_page=True)
    await customer.screenshot(path=str(ARTIFACTS / f"widget-{width}.png"), full_page=True)
    await customer_ctx.close()
    await agent_ctx.close()


async def test_the_console_says_why_routing_set_the_agent_away(desk: str, browser: Browser) -> None:
    """An offer left to run out sets Ada away; her console tells her so and why, live."""
    context = await browser.new_context()
    console = await context.new_page()
    await sign_in(console, desk)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with http_client(base_url=desk, headers=headers) as http:
        r = await http.patch("/v1/queues/demo-q-messaging", json={"routing": {"offer_timeout_s": 1}})
        assert r.status_code == 200, r.text
        try:
            r = await http.post(
                "/v1/messages",
                json={"customer": {"external_id": f"unanswered-{uuid.uuid4().hex[:6]}"}, "text": pii("anyone?")},
            )
            assert r.status_code == 202, r.text
            await expect(console.locator("#who")).to_contain_text("away", timeout=15_000)
            await expect(console.locator("#who")).to_contain_text("an offer ran out unanswered")
            await expect(console.locator("#presence")).to_have_value("away")
        finally:
            await http.patch("/v1/queues/demo-q-messaging", json={"routing": {"offer_timeout_s": 60}})
            await http.put("/v1/agents/agent-ada/presence", json={"presence": "online"})
    await context.close()


def test_the_console_and_widget_are_served_with_their_assets(desk: str) -> None:
    with httpx.Client(base_url=desk) as http:
        for path, kind in (
            ("/console", "text/html"),
            ("/demo", "text/html"),
            ("/web/console.js", "javascript"),
            ("/web/widget.js", "javascript"),
            ("/web/console.css", "text/css"),
        ):
            r = http.get(path)
            assert r.status_code == 200 and kind in r.headers["content-type"], path
