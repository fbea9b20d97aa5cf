"""The console's simulations screen in a real browser (Debian's Chromium driven by Playwright), against an
in-process embedded desk, as tests/e2e/test_console_desk_browser.py drives it (its fixtures and helpers are
reused here):

- a supervisor opens Simulations, finds the shipped example (docs/examples/simulation/) prefilled, runs it
  (POST /v1/simulations, then GET /v1/simulations/{id} until done) and sees each queue's baseline and proposal
  side by side, the change highlighted the way it goes, and a chart per hour;
- a desk the simulator refuses shows the 422's detail, naming the field, and text that is not JSON is named
  before anything is sent;
- an agent's key has no simulations screen.

At a desktop (1280 x 800) and a phone (390 x 844) width. With SWITCHBOARD_UPDATE_DOCS=1 the desktop screenshot
replaces docs/console-simulations.png (under 250 KB)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from playwright.async_api import Browser, Page, expect

from services.router.adapters.db.api_keys import generate_key, store_key
from services.router.simulation import runs
from tests.e2e import test_console_desk_browser as console_desk
from tests.support.processes import ROOT
from tests.support.runtime import Desk

# the embedded desk and its app on a socket, as the other console tests start them (the browser: tests/e2e/conftest.py)
desk = console_desk.desk
base = console_desk.base

EXAMPLE = ROOT / "docs" / "examples" / "simulation"
INPUTS = {"desk": "Desk, as configured now", "proposal": "Proposal (empty: the desk alone)", "traffic": "Traffic"}
RUN_TIMEOUT_MS = 60_000  # the first run also starts the worker process (a fresh interpreter)


def example(name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((EXAMPLE / f"{name}.json").read_text())
    return found


async def key_for(desk: Desk, role: str, agent_id: str | None = None) -> Desk:
    """The same desk, signed in with a new key of this role."""
    key = generate_key()
    await store_key(desk.router.db, desk.tenant, key, role, "test", datetime.now(UTC), agent_id)
    return replace(desk, key=key)


async def open_simulations(page: Page, base: str, desk: Desk) -> None:
    await console_desk.sign_in(page, base, await key_for(desk, "supervisor"))
    await page.get_by_role("link", name="Simulations").click()
    await expect(page.locator("#simulations")).to_be_visible()
    await expect(page.locator("#desk")).to_be_hidden()
    await expect(page.locator("#supervisor")).to_be_hidden()


def percent(x: float) -> str:
    return f"{100 * x:.1f}%"


def points(d: float) -> str:
    minus = "\N{MINUS SIGN}"  # as the console writes a negative change
    return f"{'+' if d > 0 else minus}{abs(100 * d):.1f} pts"


@console_desk.WIDTHS
async def test_a_supervisor_runs_the_shipped_example_and_sees_each_queue_before_and_after(
    desk: Desk, base: str, browser: Browser, width: int, height: int
) -> None:
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    await open_simulations(page, base, desk)
    for name, label in INPUTS.items():
        assert json.loads(await page.get_by_label(label, exact=True).input_value()) == example(name), (
            f"{name} is the example"
        )

    await page.get_by_role("button", name="Run simulation").click()
    await expect(page.locator("#sim-status")).to_contain_text("Done", timeout=RUN_TIMEOUT_MS)
    await expect(page.locator("#sim-error")).to_have_text("")

    # the same inputs and seed give the same report: the figures shown are the simulator's, in their columns
    report = runs.run({"desk": example("desk"), "proposal": example("proposal"), "traffic": example("traffic")})
    before, after = report["baseline"]["queues"]["billing"], report["proposal"]["queues"]["billing"]
    assert after["sla_attainment"] > before["sla_attainment"], "the example's overflow helps Billing"
    billing = page.get_by_role("region", name="Billing")
    await expect(billing.locator("thead th")).to_have_text(["Figure", "Baseline", "Proposal", "Change"])
    sla = billing.locator('tr[data-figure="sla_attainment"] td')
    await expect(sla).to_have_text(
        [
            percent(before["sla_attainment"]),
            percent(after["sla_attainment"]),
            re.compile(re.escape(points(after["sla_attainment"] - before["sla_attainment"]))),
        ]
    )
    await expect(sla.nth(2)).to_have_class(re.compile(r"\bbetter\b"))
    await expect(billing.locator('tr[data-figure="wait_p90_s"] td.diff')).to_have_class(re.compile(r"\bbetter\b"))
    for scope in ("All queues", "Care"):
        await expect(page.get_by_role("region", name=scope).locator("thead th")).to_have_count(4)
    clipped = await page.evaluate(
        "[...document.querySelectorAll('.sim-card .scroll')].filter((s) => s.scrollWidth > s.clientWidth).length"
    )
    assert clipped == 0, "each queue's figures fit their card, the change included, with no sideways scrolling"
    await expect(page.locator("#sim-summary")).to_contain_text(
        f"{report['baseline']['total']['arrived']} conversations"
    )

    chart = page.locator("#sim-chart svg")
    await expect(chart).to_have_attribute("aria-label", "SLA attainment per hour, All queues: baseline and proposal")
    await expect(chart.locator("path.line")).to_have_count(2)
    await expect(chart.locator("text", has_text="12:00")).to_have_count(1)  # in the desk's time zone, not UTC
    await page.get_by_label("Show").select_option(label="Wait p90")
    await page.get_by_label("for", exact=True).select_option(label="Billing")
    await expect(chart).to_have_attribute("aria-label", re.compile("^Wait p90 per hour, Billing"))
    hours_with_answers = sum(h["wait_p90_s"] is not None for h in report["proposal"]["queue_hours"]["billing"])
    await expect(chart.locator("circle.proposal")).to_have_count(hours_with_answers)

    await page.get_by_label("Show").select_option(label="SLA attainment")
    await page.get_by_label("for", exact=True).select_option(label="All queues")
    await page.evaluate("document.getElementById('sim-results').scrollIntoView()")
    await console_desk.screenshot(page, "console-simulations", width)
    await context.close()


async def test_a_desk_the_simulator_refuses_shows_the_detail_naming_the_field(
    desk: Desk, base: str, browser: Browser
) -> None:
    context = await browser.new_context(viewport={"width": 390, "height": 844})
    page = await context.new_page()
    await open_simulations(page, base, desk)
    desk_input = page.get_by_label(INPUTS["desk"], exact=True)

    broken = example("desk")
    broken["agents"][0]["queue_ids"] = ["nowhere"]
    await desk_input.fill(json.dumps(broken, indent=2))
    await page.get_by_role("button", name="Run simulation").click()
    error = page.locator("#sim-error")
    await expect(error).to_contain_text("Validation failed: desk: agents[0].queue_ids: no queue nowhere")
    await expect(desk_input).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#sim-results")).to_be_hidden()
    await expect(page.get_by_role("button", name="Run simulation")).to_be_enabled()
    await console_desk.fits_the_screen(page)

    # not JSON at all: named before anything is sent
    await page.get_by_role("button", name="Reset to the example").click()
    await expect(desk_input).not_to_have_attribute("aria-invalid", "true")
    await page.get_by_label(INPUTS["traffic"], exact=True).fill('{"start": ')
    await page.get_by_role("button", name="Run simulation").click()
    await expect(error).to_contain_text("The traffic is not valid JSON")
    await expect(page.get_by_label(INPUTS["traffic"], exact=True)).to_have_attribute("aria-invalid", "true")
    await context.close()


async def test_an_agent_key_has_no_simulations_screen(desk: Desk, base: str, browser: Browser) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    await console_desk.sign_in(page, base, await key_for(desk, "agent", desk.agent()))
    await expect(page.get_by_role("link", name="Inbox")).to_be_visible()
    await expect(page.get_by_role("link", name="Simulations")).to_be_hidden()
    await page.goto(f"{base}/console#simulations")
    await expect(page.locator("#who")).to_contain_text("Ada Lovelace")
    await expect(page.locator("#desk")).to_be_visible()
    await expect(page.locator("#simulations")).to_be_hidden()
    await context.close()
