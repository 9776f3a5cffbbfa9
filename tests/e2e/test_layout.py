"""Every page, for every role, on a laptop (1366x900) and a phone (390x844), in Debian's
headless Chromium: nothing wider than the screen, and no WCAG 2.1 A or AA violation that
axe-core (tests/js, from the npm registry) finds.

The pages are found as a person finds them: from the menu and the links on the pages
themselves, one page of each kind (a license, a request, a product...), so a new page is
checked as soon as something links to it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page

from tests.e2e.test_portal_browser import CHROMIUM, REPO_ROOT
from tests.live import live_portal

pytestmark = pytest.mark.browser

AXE = REPO_ROOT / "tests" / "js" / "node_modules" / "axe-core" / "axe.min.js"
SIZES = {"laptop": (1366, 900), "phone": (390, 844)}
ACCOUNTS = {
    "staff_admin": ("admin@hornsandhooves.example", "demo-staff-admin"),
    "staff": ("support@hornsandhooves.example", "demo-staff-user"),
    "customer_admin": ("admin@acme.example", "demo-acme-admin"),
    "customer_user": ("user@acme.example", "demo-acme-user"),
}
PUBLIC = ["/login", "/password/forgot", "/problems"]
# Links that are not pages: files, reports, actions, what a page opens in place.
NOT_PAGES = re.compile(r"^/(api/|static/|logout|notifications/open/|reports/scheduled/)"
                       r"|[?&]format=")
ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
                r"|(LIC|CRT|REQ)-\d{4}-\d+")
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# PORTAL_SCREENSHOTS=docs/screenshots: also keep a picture of each kind of page at each size
# (the last role to see a kind wins: the customer user's view where customers see it).
SCREENSHOTS = os.environ.get("PORTAL_SCREENSHOTS")


def kind_of(path: str) -> str:
    """/licenses/0193... and /licenses/0194... are one kind of page."""
    kind = ID.sub("{id}", path)
    return re.sub(r"^/problems/[\w-]+$", "/problems/{slug}", kind)


@pytest.fixture(scope="module")
def portal_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    assert AXE.exists(), f"{AXE} is missing: npm ci --prefix tests/js (tests/run.sh does)"
    with live_portal(tmp_path_factory.mktemp("layout")) as portal:
        yield portal.url


async def links_on(page: Page) -> list[str]:
    hrefs: list[str] = await page.evaluate(
        "() => [...document.querySelectorAll('a[href]:not([download])')]"
        ".map(a => a.getAttribute('href'))")
    found = []
    for href in hrefs:
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or not parts.path.startswith("/"):
            continue
        if NOT_PAGES.search(href):
            continue
        found.append(parts.path)
    return found


async def problems_on(page: Page) -> list[str]:
    """What is wrong with the page as shown: wider than the screen, or axe's findings."""
    found = []
    width, screen = await page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth]")
    if width > screen:
        found.append(f"{width} px wide on a {screen} px screen")
    await page.add_script_tag(path=str(AXE))
    violations = await page.evaluate(
        "async tags => (await axe.run(document, {runOnly: {type: 'tag', values: tags}}))"
        ".violations.map(v => `${v.id} (${v.impact}): ${v.help}: `"
        " + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))", WCAG)
    found.extend(violations)
    return found


def picture_name(kind: str, size: str) -> str:
    """/licenses/{id} at phone size -> licenses-id-phone.png"""
    slug = re.sub(r"[^a-z0-9]+", "-", kind.lower()).strip("-") or "home"
    return f"{slug}-{size}.png"


async def visit_all(browser: Browser, url: str, size: str,
                    account: tuple[str, str] | None) -> dict[str, list[str]]:
    """Each kind of page the account reaches -> what is wrong with it."""
    width, height = SIZES[size]
    context = await browser.new_context(base_url=url, bypass_csp=True,
                                        viewport={"width": width, "height": height})
    page = await context.new_page()
    try:
        if account is not None:
            await page.goto("/login")
            await page.fill("input[name=email]", account[0])
            await page.fill("input[name=password]", account[1])
            await page.click("form[action='/login'] button[type=submit]")
            await page.wait_for_url(re.compile(r"/cabinets/"))
        queue = ["/organisation", *PUBLIC[2:]] if account is not None else list(PUBLIC)
        seen: set[str] = set()
        report: dict[str, list[str]] = {}
        while queue:
            path = queue.pop(0)
            if kind_of(path) in seen:
                continue
            seen.add(kind_of(path))
            response = await page.goto(path)
            assert response is not None and response.status < 400, \
                f"{path} answered {response and response.status} to a link on a page"
            shown = kind_of(page.url.removeprefix(url).split("?")[0])
            if SCREENSHOTS:
                await page.screenshot(path=str(Path(SCREENSHOTS) / picture_name(shown, size)))
            report[shown] = await problems_on(page)
            queue.extend(p for p in await links_on(page) if kind_of(p) not in seen)
        return report
    finally:
        await context.close()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("role", [*ACCOUNTS, "anonymous"])
async def test_every_page_fits_the_screen_and_passes_axe(browser: Browser, portal_url: str,
                                                         role: str, size: str) -> None:
    report = await visit_all(browser, portal_url, size, ACCOUNTS.get(role))
    assert len(report) >= (3 if role == "anonymous" else 12), sorted(report)
    wrong = {page: problems for page, problems in report.items() if problems}
    assert not wrong, "\n".join(f"{page}:\n  " + "\n  ".join(problems)
                                for page, problems in sorted(wrong.items()))
