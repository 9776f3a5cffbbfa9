"""Support in a real browser, with a real django-helpdesk behind the portal: a customer opens
a request with a file (uploaded with progress), the request reaches the helpdesk, an agent
answers there, and the answer appears on the customer's open page without a reload."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, FilePayload, Page, async_playwright, expect

from tests.e2e.test_portal_browser import CHROMIUM, CHROMIUM_ARGS, screenshot, sign_in
from tests.helpdesk import DjangoHelpdeskServer, until
from tests.live import LivePortal, live_portal

pytestmark = pytest.mark.browser
SECRET = "browser-test-hook-secret"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def portal(tmp_path: Path, django_helpdesk: DjangoHelpdeskServer) -> Iterator[LivePortal]:
    env = {**django_helpdesk.portal_env(SECRET), "PORTAL_SUPPORT__DELIVERY_INTERVAL": "0.5"}
    with live_portal(tmp_path / "var", env=env) as running:
        django_helpdesk.send_webhooks_to(f"{running.url}/api/v1/feed/helpdesk/{SECRET}")
        try:
            yield running
        finally:
            django_helpdesk.send_webhooks_to(None)


@pytest.fixture
async def page(portal: LivePortal) -> AsyncIterator[Page]:
    async with async_playwright() as playwright:
        browser: Browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        context = await browser.new_context(base_url=portal.url,
                                            viewport={"width": 1366, "height": 900})
        try:
            yield await context.new_page()
        finally:
            await context.close()
            await browser.close()


async def test_a_request_with_a_file_and_the_agents_answer_arriving_live(
        page: Page, django_helpdesk: DjangoHelpdeskServer) -> None:
    await page.goto("/login")
    await sign_in(page, "user@acme.example", "demo-acme-user")
    await page.goto("/support/new")
    form = page.locator("form[data-new-request]")
    await form.locator('select[name="product_id"]').select_option(label="DB Guard")
    await form.locator('select[name="priority"]').select_option("high")
    await form.locator('input[name="subject"]').fill("Audit search times out")
    await form.locator('textarea[name="description"]').fill(
        "Searching last week's events never ends.")
    log = FilePayload(name="search.log", mimeType="text/plain",
                      buffer=b"timeout after 30 s\n" * 5000)
    await form.locator('input[name="files"]').set_input_files(files=[log])
    await page.get_by_role("button", name="Open request").click()
    await page.wait_for_url(re.compile(r"/support/[0-9a-f-]+\?opened=1$"))
    issue_id = page.url.split("/support/")[1].split("?")[0]
    await expect(page.locator("#files")).to_contain_text("search.log")
    await expect(page.get_by_role("status").first).to_contain_text("is open")

    async def ticket() -> str | None:
        found = await django_helpdesk.tickets_with(f"Portal ref: {issue_id}")
        full = await django_helpdesk.ticket(str(found[0]["id"])) if found else None
        files = [a["filename"] for f in (full or {}).get("followup_set", [])
                 for a in f["followupattachment_set"]]
        return str(found[0]["id"]) if found and files == ["search.log"] else None

    ticket_id = await until(ticket, timeout=30)

    async def all_delivered() -> bool:
        await page.reload()  # the page as it stands now, with the bell's stream open
        return "not yet delivered" not in await page.locator("#issue-head").inner_text()

    await until(all_delivered, timeout=20)
    await expect(page.locator("[data-bell]")).to_have_attribute("data-live", "1")
    await page.evaluate("window.stayed = true")

    await django_helpdesk.reply(ticket_id, "Please update to 5.1.1; the index fix is in it.")
    conversation = page.locator("#conversation")
    await expect(conversation).to_contain_text("Please update to 5.1.1", timeout=20_000)
    await expect(conversation).to_contain_text("Support team")
    assert await page.evaluate("window.stayed === true")  # no reload: swapped in place
    await expect(page.locator("#issue-facts")).to_contain_text("answered in")
    shot = await screenshot(page, REPO_ROOT / "docs" / "screenshots" / "support-request.png",
                            full_page=True)
    assert shot.stat().st_size > 10_000
