"""The portal in a real browser: Debian's headless Chromium against `portal serve`.

A customer administrator signs in, adds a user, the new user sets a password through the
one-time link and signs in; along the way the login errors, the session cookies and the
sign-out are checked. Screenshots go to tests/artifacts/ for a human to look at.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.live import live_portal

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"

ADMIN_EMAIL, ADMIN_PASSWORD = "admin@acme.example", "demo-acme-admin"
SESSION_COOKIES = {"portal_access", "portal_refresh", "portal_csrf"}
PASSWORD_MIN_LENGTH = 10  # config.yaml's auth.password_min_length, which the server enforces

expect.set_options(timeout=10_000)


@pytest.fixture(scope="module")
def portal_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`portal demo`, then `portal serve` on a free loopback port, all on a fresh data folder."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    with live_portal(tmp_path_factory.mktemp("portal-data")) as portal:
        yield portal.url


@pytest.fixture
async def context(browser: Browser, portal_url: str) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(base_url=portal_url, viewport={"width": 1280, "height": 800})
    try:
        yield ctx
    finally:
        await ctx.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


async def screenshot(page: Page, path: Path, *, full_page: bool = False) -> Path:
    path.unlink(missing_ok=True)  # a stale file from an earlier run must not pass for this one
    await page.screenshot(path=str(path), full_page=full_page)
    return path


def random_email() -> str:
    return f"e2e-{secrets.token_hex(5)}@acme.example"


async def sign_in(page: Page, email: str, password: str) -> None:
    await page.get_by_label("E-mail address", exact=True).fill(email)
    await page.get_by_label("Password", exact=True).fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def sign_out(page: Page) -> None:
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/login?notice=signed-out")


async def add_user(page: Page, email: str, name: str) -> str:
    """Fill the "Add a user" form on a cabinet page; the set-password link it hands out."""
    form = page.locator("form#add-user")
    await form.get_by_label("E-mail address").fill(email)
    await form.get_by_label("Name").fill(name)
    await form.get_by_label("Role").select_option("customer_user")
    await form.get_by_role("button", name="Add user").click()
    banner = page.locator("#invitation")
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text(f"{email} was added.")
    return await banner.get_by_label("Set-password link").input_value()


async def set_password(page: Page, password: str, again: str | None = None) -> None:
    await page.get_by_label("New password").fill(password)
    await page.get_by_label("The same password again").fill(password if again is None else again)
    await page.get_by_role("button", name="Set password").click()


def user_row(page: Page, email: str) -> Any:
    return page.locator("#users table tbody tr").filter(
        has=page.get_by_role("cell", name=email, exact=True))


def status_cell(page: Page, email: str) -> Any:
    """The badge of the user's status."""
    return user_row(page, email).get_by_role("cell").nth(3).locator(".badge")


async def test_admin_invites_a_user_who_sets_a_password_and_signs_in(
        page: Page, context: BrowserContext, portal_url: str, artifacts: Path) -> None:
    # Anonymous: the portal's root sends the browser to the login page.
    await page.goto("/")
    await expect(page).to_have_url(f"{portal_url}/login")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await expect(page.get_by_role("banner")).to_have_count(0)  # no top bar when signed out
    shots = [await screenshot(page, artifacts / "login.png")]

    # A wrong password: the login page again, with the error and the e-mail kept.
    async with page.expect_response(
            lambda r: r.request.method == "POST" and r.url == f"{portal_url}/login") as answer:
        await sign_in(page, ADMIN_EMAIL, "not-the-password")
    assert (await answer.value).status == 401
    error = page.get_by_role("alert")
    await expect(error).to_be_visible()
    await expect(error).not_to_be_empty()
    await expect(page.get_by_label("E-mail address", exact=True)).to_have_value(ADMIN_EMAIL)
    await expect(page.get_by_label("Password", exact=True)).to_have_value("")
    got = {c["name"] for c in await context.cookies()}
    assert not got & {"portal_access", "portal_refresh"}, got
    shots.append(await screenshot(page, artifacts / "login-error.png"))

    # The customer administrator signs in and lands on their organisation.
    await sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    await page.wait_for_url("**/cabinets/*")
    cabinet_url = page.url
    await expect(page.get_by_role("heading", level=1)).to_have_text("Acme LLC")
    await expect(page.get_by_role("link", name="My organisation")).to_have_attribute(
        "aria-current", "page")
    top_bar = page.get_by_role("banner")
    await expect(top_bar).to_contain_text(ADMIN_EMAIL)
    await expect(top_bar).to_contain_text("customer admin", ignore_case=True)
    await expect(page.locator("#children").get_by_role("link", name="Acme Labs")).to_be_visible()
    await expect(user_row(page, ADMIN_EMAIL)).to_contain_text("(you)")
    await expect(user_row(page, "user@acme.example")).to_contain_text("Bob User")

    # The session lives in HttpOnly cookies that page scripts cannot read.
    cookies = {c["name"]: c for c in await context.cookies()}
    assert SESSION_COOKIES <= cookies.keys(), cookies.keys()
    for name in SESSION_COOKIES:
        assert cookies[name]["httpOnly"], f"{name} is not HttpOnly"
        assert cookies[name]["sameSite"] == "Lax", cookies[name]
        assert cookies[name]["path"] == "/", cookies[name]
    assert await page.evaluate("document.cookie") == ""

    # A customer administrator may add customer users and administrators, never staff.
    role_options = page.locator("form#add-user select[name=role] option")
    assert sorted(await role_options.evaluate_all("os => os.map(o => o.value)")) == [
        "customer_admin", "customer_user"]

    # Add a user: the banner hands out the set-password link and the table lists them.
    email, name = random_email(), "Erin Endtoend"
    link = await add_user(page, email, name)
    assert link.startswith(f"{portal_url}/password/set?token="), link
    assert len(link.rsplit("=", 1)[1]) >= 32, link
    row = user_row(page, email)
    await expect(row).to_contain_text(name)
    await expect(row).to_contain_text("customer user", ignore_case=True)
    await expect(status_cell(page, email)).to_have_text("invited", ignore_case=True)
    await expect(user_row(page, email)).to_contain_text("never signed in")
    shots.append(await screenshot(page, artifacts / "organisation.png", full_page=True))

    # The link opens while the administrator is still signed in: a page of its own, for the
    # invited address, at the server's minimum length.
    await page.goto(link)
    await expect(page.get_by_role("heading", name="Set your password")).to_be_visible()
    await expect(page.get_by_role("main")).to_contain_text(email)
    await expect(page.get_by_role("banner")).to_have_count(0)
    await expect(page.get_by_label("New password")).to_have_attribute(
        "minlength", str(PASSWORD_MIN_LENGTH))
    shots.append(await screenshot(page, artifacts / "set-password.png"))

    # Two different passwords: an error, the token kept for another try.
    password = f"Pw-{secrets.token_urlsafe(12)}"
    await set_password(page, password, again=password + "x")
    await expect(page.get_by_role("alert")).to_have_text("The two passwords differ.")
    await expect(page.locator("input[name=token]")).to_have_value(link.rsplit("=", 1)[1])

    # The real thing: whoever was signed in here is signed out, and the page confirms it.
    await set_password(page, password)
    await page.wait_for_url("**/login?notice=password-set")
    await expect(page.get_by_role("status")).to_have_text(
        "Your password is set. Sign in with it now.")
    remaining = {c["name"] for c in await context.cookies()}
    assert not remaining & {"portal_access", "portal_refresh"}, remaining

    # The link works once: opened again, it says so instead of showing the form.
    await page.goto(link)
    await expect(page.get_by_role("alert")).to_contain_text("invalid, used or expired")
    await expect(page.get_by_label("New password")).to_have_count(0)
    await page.goto("/login")

    # The new user signs in with the password just set.
    await sign_in(page, email, password)
    await page.wait_for_url(cabinet_url)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Acme LLC")
    await expect(top_bar).to_contain_text(email)
    await expect(top_bar).to_contain_text("customer user", ignore_case=True)
    await expect(user_row(page, email)).to_contain_text("(you)")
    await expect(status_cell(page, email)).to_have_text("active", ignore_case=True)
    await expect(user_row(page, email).get_by_role("cell").nth(4)).to_contain_text(" UTC")
    await expect(page.locator("#children").get_by_role("link", name="Acme Labs")).to_be_visible()
    # A customer user manages nobody: no "Add a user" form, no actions, no other forms.
    await expect(page.get_by_role("heading", name="Add a user")).to_have_count(0)
    await expect(page.locator("form#add-user")).to_have_count(0)
    await expect(page.get_by_role("columnheader", name="Actions")).to_have_count(0)
    await expect(page.get_by_role("button", name="Remove")).to_have_count(0)
    await expect(page.get_by_role("button", name="Create")).to_have_count(0)
    shots.append(await screenshot(page, artifacts / "organisation-member.png", full_page=True))

    # Signing out ends the session: the login page with the notice, the cookies gone.
    await sign_out(page)
    await expect(page.get_by_role("status")).to_have_text("You have signed out.")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    remaining = {c["name"] for c in await context.cookies()}
    assert not remaining & {"portal_access", "portal_refresh"}, remaining
    shots.append(await screenshot(page, artifacts / "signed-out.png"))
    await page.goto("/organisation")
    await expect(page).to_have_url(f"{portal_url}/login?next=%2Forganisation")

    for shot in shots:
        assert shot.is_file() and shot.stat().st_size > 0, shot
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", shot
    for required in ("login.png", "organisation.png", "signed-out.png"):
        assert (artifacts / required).stat().st_size > 0, required


async def test_customer_admin_downloads_a_license_pdf_and_hands_it_down(
        page: Page, portal_url: str, artifacts: Path) -> None:
    await page.goto("/login")
    await sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    await page.wait_for_url("**/cabinets/*")
    await page.get_by_role("link", name="Licenses", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Licenses")
    row = page.locator("table tbody tr").filter(has_text="DB Guard").filter(
        has_text="Enterprise").filter(has_text="Acme LLC")
    await expect(row.get_by_text("Active", exact=True)).to_be_visible()
    number = (await row.locator("code").inner_text()).strip()
    shots = [await screenshot(page, artifacts / "licenses.png", full_page=True)]

    await row.get_by_role("link", name=number).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(number)
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Download PDF").click()
    download = await download_info.value
    assert download.suggested_filename == f"{number}.pdf"
    pdf = Path(await download.path()).read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 5_000
    async with page.expect_download() as license_file_info:
        await page.get_by_role("link", name="License file").click()
    assert (await license_file_info.value).suggested_filename == f"{number}.lic"

    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    transfer = page.locator("#transfer")
    await transfer.get_by_label("To organisation").select_option(label="Acme Labs")
    await transfer.get_by_role("button", name="Transfer").click()
    await expect(page.get_by_role("status")).to_have_text("Transferred to Acme Labs.")
    await expect(page.locator(".details")).to_contain_text("Acme Labs")
    history = page.locator(".list li").first
    await expect(history).to_contain_text("From Acme LLC to Acme Labs")
    await expect(history).to_contain_text(f"by {ADMIN_EMAIL}")
    shots.append(await screenshot(page, artifacts / "license.png", full_page=True))
    for shot in shots:
        assert shot.stat().st_size > 0


async def test_customer_downloads_a_file_and_a_zip_of_several(
        page: Page, portal_url: str, artifacts: Path) -> None:
    await page.goto("/login")
    await sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    await page.wait_for_url("**/cabinets/*")
    await page.goto("/licenses?product=vaultkeeper")
    row = page.locator("table tbody tr").filter(has_text="VaultKeeper").filter(has_text="Team")
    await row.locator("a").first.click()
    downloads = page.locator("#downloads")
    await expect(downloads.get_by_role("heading", name="Downloads")).to_be_visible()

    # 2.4.1 is a fix published after Acme's (missing) support certificate: listed, locked.
    fix = downloads.locator("article.release").filter(has_text="2.4.1")
    await expect(fix.locator(".locked-reason")).to_contain_text("support certificate")
    await expect(fix.get_by_role("checkbox")).to_be_disabled()
    await expect(fix.get_by_role("link", name="Download")).to_have_count(0)

    release = downloads.locator("article.release").filter(has_text="VaultKeeper 2.4").filter(
        has_not_text="2.4.1")
    guide = release.locator("tr").filter(has_text="vaultkeeper-2.4-admin-guide.txt")
    async with page.expect_download() as one_info:
        await guide.get_by_role("link", name="Download").click()
    one = await one_info.value
    assert one.suggested_filename == "vaultkeeper-2.4-admin-guide.txt"
    body = Path(await one.path()).read_bytes()
    listed_sha = await guide.locator("code.sha").text_content()
    assert len(body) == 16 << 10 and hashlib.sha256(body).hexdigest() == listed_sha

    zip_button = downloads.get_by_role("button", name="Download selected as zip")
    await expect(zip_button).to_be_disabled()  # nothing ticked yet
    for checkbox in await release.get_by_role("checkbox").all():
        await checkbox.check()
    await expect(downloads.locator("[data-zip-count]")).to_have_text("2 files selected.")
    await screenshot(page, artifacts / "downloads.png", full_page=True)
    async with page.expect_download() as zip_info:
        await zip_button.click()
    bundle = await zip_info.value
    assert bundle.suggested_filename.endswith("-files.zip")
    with zipfile.ZipFile(await bundle.path()) as archive:
        assert archive.testzip() is None
        sums = dict(line.split("  ")[::-1]
                    for line in archive.read("SHA256SUMS").decode().splitlines())
        names = sorted(n for n in archive.namelist() if n != "SHA256SUMS")
        assert names == ["vaultkeeper-2.4/vaultkeeper-2.4-admin-guide.txt",
                         "vaultkeeper-2.4/vaultkeeper-2.4.qcow2"]
        for name in names:
            assert hashlib.sha256(archive.read(name)).hexdigest() == sums[name]
        assert archive.read(names[0]) == body

    # The download history shows the single file and the zip's members.
    await page.get_by_role("link", name="Downloads", exact=True).click()
    history = page.locator("table tbody tr")
    await expect(history.filter(has_text="vaultkeeper-2.4.qcow2").filter(
        has_text="in a zip")).to_have_count(1)
    await expect(history.filter(has_text="vaultkeeper-2.4-admin-guide.txt")).to_have_count(2)
    await expect(history.first).to_contain_text(ADMIN_EMAIL)

    # The product page: releases with their notes, the security release marked.
    await page.goto("/products")
    await page.get_by_role("link", name="DB Guard").click()
    security = page.locator("article.release-security")
    await expect(security).to_contain_text("CVE-2026-31337")
    await expect(security.locator(".badge-security")).to_have_text("Security")
    await expect(security.locator(".notes strong")).to_have_text("now")
    await screenshot(page, artifacts / "product.png", full_page=True)


async def test_an_announcement_rings_the_open_pages_bell_without_a_reload(
        page: Page, portal_url: str, artifacts: Path) -> None:
    await page.goto("/login")
    await sign_in(page, "user@acme.example", "demo-acme-user")
    await page.wait_for_url("**/cabinets/*")
    await page.get_by_role("link", name="Licenses", exact=True).click()
    bell = page.locator("[data-bell]")
    await expect(bell).to_have_attribute("data-live", "1")  # the stream is open
    before = int(await bell.get_attribute("data-unread") or "0")

    title = f"Maintenance window {secrets.token_hex(3)}"
    async with ClientSession() as http:
        async with http.post(f"{portal_url}/api/v1/jwt", json={
                "email": "admin@hornsandhooves.example", "password": "demo-staff-admin"}) as got:
            token = (await got.json())["access_token"]
        async with http.post(f"{portal_url}/api/v1/notifications", json={
                "title": title, "body": "The portal pauses on Sunday 02:00-03:00 UTC.",
                "link": "/licenses"}, headers={"Authorization": f"Bearer {token}"}) as sent:
            assert sent.status == 201, await sent.text()

    await expect(bell).to_have_attribute("data-unread", str(before + 1))
    await expect(bell.locator("[data-bell-count]")).to_have_text(str(before + 1))
    await bell.get_by_role("link", name="Notifications").click()
    panel = bell.locator("[data-bell-panel]")
    await expect(panel).to_be_visible()
    await expect(panel.locator("li").first).to_contain_text(title)
    await screenshot(page, artifacts / "bell.png")

    await panel.get_by_role("link", name="See all").click()
    item = page.locator("li.notification").filter(has_text=title)
    await expect(item).to_have_class(re.compile(r"\bunread\b"))
    await item.get_by_role("button", name="Mark read").click()
    await expect(page.locator("li.notification").filter(has_text=title)).not_to_have_class(
        re.compile(r"\bunread\b"))


async def test_the_reports_page_draws_its_charts_and_hands_out_each_format(
        page: Page, artifacts: Path) -> None:
    await page.goto("/login")
    await sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    await page.goto("/reports")
    await expect(page.get_by_role("heading", name="Reports", exact=True)).to_be_visible()
    charts = page.locator("figure.chart")
    await expect(charts).to_have_count(5)
    assert await page.locator("figure.chart svg rect").count() >= 3  # drawn, not scripted
    licenses = page.locator(".report-card", has_text="Licenses")
    async with page.expect_download() as csv_info:
        await licenses.get_by_role("link", name="CSV").click()
    download = await csv_info.value
    assert re.fullmatch(r"licenses-acme-llc-\d{4}-\d{2}-\d{2}\.csv", download.suggested_filename)
    lines = Path(await download.path()).read_text().splitlines()
    assert lines[0].startswith("Number,Product,Edition,Seats,Holder")
    assert {line.split(",")[4] for line in lines[1:]} == {"Acme LLC", "Acme Labs"}
    async with page.expect_download() as xlsx_info:
        await licenses.get_by_role("link", name="XLSX").click()
    assert Path(await (await xlsx_info.value).path()).read_bytes().startswith(b"PK")
    own = sum(line.split(",")[4] == "Acme LLC" for line in lines[1:])
    await page.get_by_label("With the organisations below").uncheck()
    await page.get_by_role("button", name="Show").click()
    await expect(licenses).to_contain_text(f"{own} row{'s' if own != 1 else ''} ·")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 1280
    await screenshot(page, artifacts / "reports.png", full_page=True)
    docs = REPO_ROOT / "docs" / "screenshots" / "reports.png"
    await page.get_by_label("With the organisations below").check()
    await page.get_by_role("button", name="Show").click()
    await screenshot(page, docs, full_page=True)
