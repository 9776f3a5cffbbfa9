"""The browser portal over HTTP: cookie sessions, CSRF, rotation on expiry, sign-out."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest

from app.domain.roles import Role
from tests.world import PASSWORD, Client, World, email, unique

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


async def csrf_of(client: Client, path: str = "/login") -> str:
    page = await (await client.get(path)).text()
    match = CSRF.search(page)
    assert match, page
    return match[1]


async def sign_in(client: Client, address: str, password: str = PASSWORD,
                  next_path: str = "/") -> None:
    token = await csrf_of(client)
    response = await client.post("/login", data={
        "email": address, "password": password, "csrf_token": token, "next": next_path},
        allow_redirects=False)
    assert response.status == 303, await response.text()


def cookie(client: Client, name: str) -> str | None:
    found = [c for c in client.session.cookie_jar if c.key == name]
    return found[0].value if found else None


async def test_signed_out_pages_redirect_to_login_with_next(client: Client) -> None:
    response = await client.get("/organisation", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/login?next=%2Forganisation"


async def test_sign_in_sets_httponly_samesite_cookies(world: World) -> None:
    client = world.client
    actor = world.actors[Role.CUSTOMER_ADMIN]
    token = await csrf_of(client)
    response = await client.post("/login", data={
        "email": actor.email, "password": PASSWORD, "csrf_token": token, "next": "/cabinets"},
        allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/cabinets"
    set_cookies = response.headers.getall("Set-Cookie")
    for name in ("portal_access", "portal_refresh"):
        [line] = [c for c in set_cookies if c.startswith(name + "=")]
        assert "HttpOnly" in line and "SameSite=Lax" in line and "Path=/" in line
    page = await client.get(f"/cabinets/{world.own.id}")
    html = await page.text()
    assert page.status == 200
    assert world.own.name in html and world.child.name in html and "Add a user" in html


async def test_forms_without_the_csrf_token_are_refused(world: World) -> None:
    client = world.client
    await csrf_of(client)  # the browser has its CSRF cookie, but the form lacks the token
    actor = world.actors[Role.CUSTOMER_ADMIN]
    response = await client.post("/login", data={"email": actor.email, "password": PASSWORD})
    assert response.status == 403
    assert "CSRF" in await response.text() or "expired" in await response.text()
    assert cookie(client, "portal_access") is None
    forged = await client.post("/login", data={"email": actor.email, "password": PASSWORD,
                                               "csrf_token": "0" * 64})
    assert forged.status == 403


async def test_open_redirects_are_refused(world: World) -> None:
    client = world.client
    token = await csrf_of(client)
    response = await client.post("/login", data={
        "email": world.actors[Role.CUSTOMER_USER].email, "password": PASSWORD,
        "csrf_token": token, "next": "//evil.example/steal"}, allow_redirects=False)
    assert response.headers["Location"] == "/"


async def test_wrong_password_shows_the_form_again(world: World) -> None:
    client = world.client
    token = await csrf_of(client)
    response = await client.post("/login", data={
        "email": world.actors[Role.CUSTOMER_USER].email, "password": "wrong",
        "csrf_token": token})
    assert response.status == 401
    assert "The e-mail address or the password is wrong." in await response.text()


async def test_an_expired_access_cookie_is_renewed_from_the_refresh_cookie(world: World) -> None:
    client = world.client
    await sign_in(client, world.actors[Role.CUSTOMER_USER].email)
    old_refresh = cookie(client, "portal_refresh")
    client.session.cookie_jar.clear(lambda c: c.key == "portal_access")
    page = await client.get(f"/cabinets/{world.own.id}")
    assert page.status == 200
    assert cookie(client, "portal_access") is not None
    assert cookie(client, "portal_refresh") not in (None, old_refresh)


async def test_cookie_session_reaches_the_api_and_unsafe_calls_need_the_header(
        world: World) -> None:
    client = world.client
    admin = world.actors[Role.CUSTOMER_ADMIN]
    await sign_in(client, admin.email)
    me = await client.get("/api/v1/me")
    assert me.status == 200 and (await me.json())["user"]["email"] == admin.email
    body = {"name": "Via Cookie", "parent_id": world.own.id}
    refused = await client.post("/api/v1/cabinets", json=body)
    assert refused.status == 403
    assert (await refused.json())["type"] == "/problems/csrf"
    token = await csrf_of(client, "/organisation")
    accepted = await client.post("/api/v1/cabinets", json=body, headers={"X-CSRF-Token": token})
    assert accepted.status == 201


async def test_sign_out_revokes_the_session(world: World) -> None:
    client = world.client
    await sign_in(client, world.actors[Role.CUSTOMER_USER].email)
    refresh = cookie(client, "portal_refresh")
    token = await csrf_of(client, "/organisation")
    response = await client.post("/logout", data={"csrf_token": token}, allow_redirects=False)
    assert response.headers["Location"] == "/login?notice=signed-out"
    assert cookie(client, "portal_access") is None
    reuse = await client.post("/api/v1/jwt/refresh", json={"refresh_token": refresh})
    assert reuse.status == 401


async def test_admin_adds_a_user_through_the_form(world: World) -> None:
    client = world.client
    await sign_in(client, world.actors[Role.CUSTOMER_ADMIN].email)
    token = await csrf_of(client, f"/cabinets/{world.child.id}")
    address = email("formuser")
    response = await client.post(f"/cabinets/{world.child.id}/users", data={
        "csrf_token": token, "email": address, "name": "Form User", "role": "customer_user"})
    html = await response.text()
    assert response.status == 201
    assert f"{address} was added." in html and "/password/set?token=" in html
    duplicate = await client.post(f"/cabinets/{world.child.id}/users", data={
        "csrf_token": token, "email": address, "name": "Again", "role": "customer_user"})
    assert duplicate.status == 409
    assert "exists already" in await duplicate.text()


async def test_customer_user_sees_no_admin_forms_and_no_foreign_cabinet(world: World) -> None:
    client = world.client
    await sign_in(client, world.actors[Role.CUSTOMER_USER].email)
    own = await (await client.get(f"/cabinets/{world.own.id}")).text()
    assert "Add a user" not in own and "New child organisation" not in own
    foreign = await client.get(f"/cabinets/{world.foreign.id}")
    assert foreign.status == 404
    assert world.foreign.name not in await foreign.text()


async def test_two_requests_renewing_the_session_at_once_both_pass(world: World) -> None:
    """An idle browser with two tabs: both requests carry the same expired session; one
    renews it, the other is let in by the grace period instead of ending the login."""
    client = world.client
    await sign_in(client, world.actors[Role.CUSTOMER_USER].email)
    client.session.cookie_jar.clear(lambda c: c.key == "portal_access")
    answers = await asyncio.gather(client.get(f"/cabinets/{world.own.id}"),
                                   client.get(f"/cabinets/{world.child.id}"))
    assert [a.status for a in answers] == [200, 200]
    # The session is alive: the renewed cookies keep working after the access token is gone.
    client.session.cookie_jar.clear(lambda c: c.key == "portal_access")
    again = await client.get(f"/cabinets/{world.own.id}", allow_redirects=False)
    assert again.status == 200


async def test_an_api_replay_of_a_spent_refresh_token_still_ends_the_login(world: World) -> None:
    """The grace period is the browser's only: the API treats any second use as theft."""
    actor = world.actors[Role.CUSTOMER_USER]
    first = await world.client.post("/api/v1/jwt/refresh",
                                    json={"refresh_token": actor.refresh_token})
    assert first.status == 200
    replay = await world.client.post("/api/v1/jwt/refresh",
                                     json={"refresh_token": actor.refresh_token})
    assert replay.status == 401
    rotated = await first.json()
    after = await world.client.get("/api/v1/me",
                                   headers={"Authorization": f"Bearer {rotated['access_token']}"})
    assert after.status == 401


@pytest.mark.parametrize("target", [
    "/\t/evil.example/", "/\n/evil.example", "/\\evil.example", "//evil.example",
    "https://evil.example/", "/%0d%0aSet-Cookie:x=y", "javascript:alert(1)"])
async def test_sign_in_never_redirects_off_site(world: World, target: str) -> None:
    client = world.client
    token = await csrf_of(client)
    response = await client.post("/login", data={
        "email": world.actors[Role.CUSTOMER_USER].email, "password": PASSWORD,
        "csrf_token": token, "next": target}, allow_redirects=False)
    location = response.headers["Location"]
    assert location in ("/", target) and not any(ord(c) < 0x20 for c in location)
    assert location == "/" or target.startswith("/%")
    page = await client.get("/login", params={"next": target}, allow_redirects=False)
    assert page.headers["Location"] in ("/", target)


async def test_forms_on_cabinets_out_of_reach_are_404(world: World) -> None:
    client = world.client
    admin = world.actors[Role.CUSTOMER_ADMIN]
    await sign_in(client, admin.email)
    token = await csrf_of(client, "/organisation")
    victim = await world.add_user(world.sibling)
    posts = {
        f"/cabinets/{world.sibling.id}/users": {"email": email("x"), "role": "customer_user"},
        f"/cabinets/{world.foreign.id}/children": {"child_name": "Mine now"},
        f"/cabinets/{world.parent.id}/name": {"name": "Renamed"},
        f"/cabinets/{world.sibling.id}/users/{victim}": {"operation": "delete"},
        f"/cabinets/{world.own.id}/users/{victim}": {"operation": "deactivate"},
    }
    for path, form in posts.items():
        response = await client.post(path, data={"csrf_token": token, **form})
        assert response.status == 404, path
        assert world.sibling.name not in await response.text()
    for path in (f"/cabinets/{world.parent.id}", f"/cabinets/{world.sibling.id}"):
        assert (await client.get(path)).status == 404


async def test_set_password_pages_are_never_cached_and_check_the_link(world: World) -> None:
    client = world.client
    created = await client.post(f"/api/v1/cabinets/{world.own.id}/users",
                                headers=world.actors[Role.CUSTOMER_ADMIN].headers,
                                json={"email": email("linked")})
    link = (await created.json())["set_password_url"]
    page = await client.get(link.replace("http://127.0.0.1:8080", ""))
    assert page.status == 200 and page.headers["Cache-Control"] == "no-store"
    assert (await created.json())["user"]["email"] in await page.text()
    dead = await client.get("/password/set", params={"token": "made-up"})
    assert dead.status == 400
    assert "invalid, used or expired" in await dead.text()
    assert 'name="password"' not in await dead.text()


async def test_long_user_lists_are_paged_searched_and_sorted_on_the_organisation_page(
        world: World) -> None:
    from tests.api.test_users import invite

    client = world.client
    invited = [await invite(world) for _ in range(52)]
    await sign_in(client, world.actors[Role.CUSTOMER_ADMIN].email)
    first = " ".join((await (await client.get(f"/cabinets/{world.own.id}")).text()).split())
    assert "54 people" in first and "1\N{EN DASH}50 of 54 users" in first
    more = re.search(r'href="(/cabinets/[^"]+\?page=2)" rel="next"', first)
    assert more, "no link to the next page of users"
    second = " ".join((await (await client.get(more[1].replace("&amp;", "&"))).text()).split())

    def emails(html: str) -> list[str]:
        return re.findall(r"<td>([^<@ ]+@[^< ]+)</td>", html)
    assert len(emails(first)) == 50 and len(emails(second)) == 4  # 52 + the two world users
    assert sorted(emails(first) + emails(second), key=str.lower) == sorted(
        [*(i["user"]["email"] for i in invited),
         *(world.actors[r].email for r in (Role.CUSTOMER_ADMIN, Role.CUSTOMER_USER))],
        key=str.lower)
    assert 'rel="next"' not in second and 'rel="prev"' in second
    # By e-mail, last first; a part of an address finds that user only.
    by_email = await (await client.get(f"/cabinets/{world.own.id}",
                                       params={"sort": "-email"})).text()
    assert emails(by_email) == sorted(emails(by_email), key=str.lower, reverse=True)
    wanted = invited[9]["user"]["email"]
    found = " ".join((await (await client.get(
        f"/cabinets/{world.own.id}", params={"q": wanted.split("@")[0].upper()})).text()).split())
    assert emails(found) == [wanted] and "1 person found" in found


async def test_license_pages_show_badges_and_offer_transfer_to_admins_only(world: World) -> None:
    from datetime import date, timedelta

    from app.domain.licensing import DocumentKind

    soon = await world.add_document(DocumentKind.LICENSE, world.own,
                                    valid_to=date.today() + timedelta(days=5))
    foreign = await world.add_document(DocumentKind.LICENSE, world.foreign)
    client = world.client
    await sign_in(client, world.actors[Role.CUSTOMER_USER].email)
    listing = await (await client.get("/licenses")).text()
    assert soon.number in listing and "Active, expires in 5 days" in listing
    assert foreign.number not in listing
    page = await (await client.get(f"/licenses/{soon.id}")).text()
    assert "Download PDF" in page and 'id="transfer"' not in page
    assert (await client.get(f"/licenses/{foreign.id}")).status == 404

    await client.post("/logout", data={"csrf_token": await csrf_of(client, "/organisation")})
    await sign_in(client, world.actors[Role.CUSTOMER_ADMIN].email)
    page = await (await client.get(f"/licenses/{soon.id}")).text()
    assert 'id="transfer"' in page and world.child.name in page
    token = await csrf_of(client, f"/licenses/{soon.id}")
    moved = await client.post(f"/licenses/{soon.id}/transfer",
                              data={"csrf_token": token, "cabinet_id": world.child.id})
    assert moved.status == 200 and "Transferred to" in await moved.text()
    refused = await client.post(f"/licenses/{soon.id}/transfer",
                                data={"csrf_token": token, "cabinet_id": world.sibling.id})
    assert refused.status == 404


async def test_staff_admins_add_and_edit_products_through_forms(world: World) -> None:
    client = world.client
    await sign_in(client, world.actors[Role.STAFF_ADMIN].email)
    token = await csrf_of(client, "/products/new")
    code = f"form-{secrets.token_hex(3)}"
    created = await client.post("/products/new", data={
        "csrf_token": token, "code": code, "name": "Form Product", "bucket": "releases",
        "parameters": '{"editions": ["Pro"]}', "active": "on"}, allow_redirects=False)
    assert created.status == 303
    location = created.headers["Location"]
    page = await (await client.get(location)).text()
    assert "Saved." in page and "Form Product" in page and "Pro" in page
    bad = await client.post(location.split("?")[0], data={
        "csrf_token": token, "name": "Form Product", "bucket": "releases",
        "parameters": "[1, 2]"})
    assert bad.status == 422 and "must be a JSON object" in await bad.text()
    # Every field that breaks a rule is named at once, not one per attempt.
    several = await client.post("/products/new", data={
        "csrf_token": token, "code": "X", "name": "Fine", "bucket": "No_Such_Bucket",
        "prefix": "a/../b", "parameters": "{not json"})
    text = await several.text()
    assert several.status == 422 and "Please correct these:" in text
    for rule in ("A product code is", "A bucket name is", "The prefix must be",
                 "Parameters must be a JSON object"):
        assert rule in text, rule
    # The same on the edit form: broken JSON beside a broken bucket, and nothing saved.
    both = await client.post(location.split("?")[0], data={
        "csrf_token": token, "name": "Renamed", "bucket": "No_Such_Bucket",
        "parameters": "{oops"})
    text = await both.text()
    assert both.status == 422 and "A bucket name is" in text and "must be a JSON object" in text
    assert "Renamed" not in await (await client.get(location.split("?")[0])).text()


async def test_customers_read_products_but_cannot_add_them(world: World) -> None:
    client = world.client
    await sign_in(client, world.actors[Role.CUSTOMER_ADMIN].email)
    listing = await (await client.get("/products")).text()
    assert world.product.name in listing and "Add a product" not in listing
    page = await (await client.get(f"/products/{world.product.id}")).text()
    assert 'name="name"' not in page
    assert (await client.get("/products/new")).status == 403
    token = await csrf_of(client, "/organisation")
    refused = await client.post("/products/new", data={
        "csrf_token": token, "code": "sneaky", "name": "x", "bucket": "releases"})
    assert refused.status == 403


async def test_a_license_page_lists_its_files_with_locked_ones_greyed(world: World) -> None:
    from datetime import date

    from app.domain.licensing import DocumentKind

    license_ = await world.add_document(DocumentKind.LICENSE, world.own,
                                        valid_from=date(2026, 1, 1), valid_to=date(2099, 1, 1))
    open_release = await world.publish("3.0", {"image.iso": b"iso", "guide.pdf": b"%PDF"})
    locked = await world.publish("3.1", {"patch.bin": b"p"}, manifest=(
        "kind: update\npublished_at: 2026-06-01\n"))
    security = await world.publish("3.2", {"sec.bin": b"s"}, manifest=(
        "kind: security\npublished_at: 2026-06-02\n"
        "notes: 'Fixes **CVE-2026-7**. <script>alert(1)</script>'\n"
        "advisories: [{id: CVE-2026-7, severity: critical, summary: Remote code execution}]\n"))
    client = world.client
    await sign_in(client, world.actors[Role.CUSTOMER_USER].email)
    page = await (await client.get(f"/licenses/{license_.id}")).text()
    base = f"/api/v1/licenses/{license_.id}/images"
    for artifact in open_release.artifacts + security.artifacts:
        assert f'href="{base}/{artifact.id}"' in page
        assert f'name="file" value="{artifact.id}" aria-label' in page
    [patch] = locked.artifacts
    assert f'href="{base}/{patch.id}"' not in page
    assert re.search(rf'value="{patch.id}"[^>]*disabled title="[^"]*support certificate', page)
    assert f'action="{base}/archive"' in page and "Download selected as zip" in page
    assert f'href="{base}/archive?release={open_release.id}"' in page
    section = page[page.index(f'id="release-{security.id}"'):]
    assert "badge-security" in section[:600] and "CVE-2026-7" in section
    assert "<strong>CVE-2026-7</strong>" in section and "<script>alert" not in page


async def test_product_pages_show_releases_and_staff_scan_and_withdraw(world: World) -> None:
    from datetime import date

    from app.domain.licensing import DocumentKind
    from app.web.keys import SERVICES

    await world.add_document(DocumentKind.LICENSE, world.own, valid_from=date(2026, 1, 1))
    first = await world.publish("4.0", {"image.iso": b"iso"},
                                manifest="notes: 'New *dashboard*.'\n")
    client = world.client
    await sign_in(client, world.actors[Role.CUSTOMER_USER].email)
    page = await (await client.get(f"/products/{world.product.id}")).text()
    assert f'id="release-{first.id}"' in page and "<em>dashboard</em>" in page
    assert "Scan now" not in page and "Withdraw" not in page
    await client.post("/logout", data={"csrf_token": await csrf_of(client, "/organisation")})

    await sign_in(client, world.actors[Role.STAFF_ADMIN].email)
    services = client.app[SERVICES]

    async def once() -> AsyncIterator[bytes]:
        yield b"new"
    await services.objects.put(world.product.bucket, f"{world.product.prefix}4.1/update.bin",
                               once())
    token = await csrf_of(client, f"/products/{world.product.id}")
    scanned = await client.post(f"/products/{world.product.id}/scan",
                                data={"csrf_token": token})
    text = await scanned.text()
    assert scanned.status == 200 and "Found 1 new version." in text and "update.bin" in text
    again = await client.post(f"/products/{world.product.id}/scan", data={"csrf_token": token})
    assert "No new versions found." in await again.text()
    withdrawn = await client.post(f"/products/{world.product.id}/releases/{first.id}",
                                  data={"csrf_token": token, "yanked": "1"})
    section = (await withdrawn.text()).split(f'id="release-{first.id}"')[1][:1500]
    assert "Withdrawn" in section and ">Restore<" in section
    listed = await (await client.get(f"/api/v1/products/{world.product.id}/releases")).json()
    assert {r["version"]: bool(r["yanked_at"]) for r in listed["items"]} == {
        "4.0": True, "4.1": False}


async def test_products_without_a_license_show_no_releases(world: World) -> None:
    await world.publish("5.0", {"image.iso": b"iso"})
    client = world.client
    await sign_in(client, world.actors[Role.CUSTOMER_USER].email)
    page = await (await client.get(f"/products/{world.product.id}")).text()
    assert "Releases are listed for the products your organisation holds a license for" in page
    assert "5.0" not in page


async def test_the_download_history_page_is_for_admins(world: World) -> None:
    from app.domain.licensing import DocumentKind

    license_ = await world.add_document(DocumentKind.LICENSE, world.own)
    release = await world.publish("6.0", {"image.iso": b"iso"})
    client = world.client
    await sign_in(client, world.actors[Role.CUSTOMER_USER].email)
    page = await (await client.get(f"/licenses/{license_.id}")).text()
    assert 'href="/downloads"' not in page
    fetched = await client.get(f"/api/v1/licenses/{license_.id}/images/{release.artifacts[0].id}")
    assert await fetched.read() == b"iso"
    assert (await client.get("/downloads")).status == 403
    await client.post("/logout", data={"csrf_token": await csrf_of(client, "/organisation")})
    await sign_in(client, world.actors[Role.CUSTOMER_ADMIN].email)
    history = await client.get("/downloads")
    text = await history.text()
    assert history.status == 200 and 'href="/downloads"' in text
    row = text[text.index(license_.number) - 400:text.index(license_.number) + 400]
    assert world.actors[Role.CUSTOMER_USER].email in row and "image.iso" in row
    assert "single file" in row


async def test_notification_pages_list_mark_delete_and_save_settings(world: World) -> None:
    client = world.client
    await sign_in(client, world.actors[Role.STAFF].email)
    token = await csrf_of(client, "/notifications/announce")
    title = unique("Upgrade day")  # PostgreSQL's history holds other tests' announcements
    announcement = {"csrf_token": token, "title": title,
                    "body": "Install 5.1 this week.", "link": "/products",
                    "audience": "cabinet", "target_cabinet": world.own.id}
    # First what it will say and to how many; nothing is sent yet.
    preview = " ".join((await (await client.post("/notifications/announce",
                                                 data=announcement)).text()).split())
    assert "Check before sending" in preview and "This reaches <strong>2 users</strong>" in preview
    assert "Send to 2 users" in preview
    assert title not in preview[preview.index('id="history"'):]
    sent = await client.post("/notifications/announce", data={**announcement, "step": "send"})
    page = " ".join((await sent.text()).split())
    assert sent.status == 200 and "Sent to 2 users." in page
    history = page[page.index('id="history"'):]
    assert title in history and f"the users of {world.own.name}" in history
    bad = await client.post("/notifications/announce", data={
        "csrf_token": token, "title": "x", "body": "y", "link": "javascript:alert(1)"})
    refused = await bad.text()
    assert bad.status == 422 and "https:// address" in refused
    assert "Sent to" not in refused  # a refusal never reads as a success too
    await client.post("/logout", data={"csrf_token": await csrf_of(client, "/organisation")})

    await sign_in(client, world.actors[Role.CUSTOMER_USER].email)
    page = await (await client.get("/notifications")).text()
    match = re.search(r'id="n-([0-9a-f-]+)"', page)
    assert match and "Upgrade day" in page and "1 unread." in page
    notification_id = match[1]
    assert (await client.get("/notifications/announce")).status == 403
    opened = await client.get(f"/notifications/open/{notification_id}", allow_redirects=False)
    assert opened.status == 303 and opened.headers["Location"] == "/products"
    assert "All read." in await (await client.get("/notifications")).text()
    token = await csrf_of(client, "/notifications")
    await client.post(f"/notifications/{notification_id}/unread", data={"csrf_token": token})
    assert "1 unread." in await (await client.get("/notifications")).text()
    await client.post(f"/notifications/{notification_id}/delete", data={"csrf_token": token})
    assert "Upgrade day" not in await (await client.get("/notifications")).text()

    saved = await client.post("/notifications/settings", data={
        "csrf_token": token, "announcement:email": "on", "security.published:in_app": "on"})
    text = await saved.text()
    assert "Saved." in text
    assert re.search(r'name="announcement:in_app"[^>]*>', text)[0].find("checked") == -1  # type: ignore[index]
    assert "checked" in re.search(r'name="security.published:in_app"[^>]*>', text)[0]  # type: ignore[index]


async def test_staff_see_the_e_mail_log_and_customers_do_not(world: World) -> None:
    client = world.client
    await sign_in(client, world.actors[Role.STAFF].email)
    token = await csrf_of(client, "/notifications/announce")
    await client.post("/notifications/announce", data={
        "csrf_token": token, "title": "Mail log check", "body": "Hello.", "step": "send",
        "audience": "cabinet", "target_cabinet": world.own.id})
    log = await client.get("/notifications/mail")
    text = await log.text()
    assert log.status == 200 and "E-mail log" in text
    rows = [row for row in text.split("<tr ")[1:] if "Mail log check" in row]
    assert len(rows) == 2  # the two users of the cabinet
    assert all(re.search(r"badge-(on|pending)\">(sent|waiting)", row) for row in rows)
    assert world.actors[Role.CUSTOMER_USER].email in "".join(rows)
    only = await (await client.get("/notifications/mail", params={
        "to": world.actors[Role.CUSTOMER_USER].email.upper()})).text()
    assert len([r for r in only.split("<tr ")[1:] if "Mail log check" in r]) == 1
    await client.post("/logout", data={"csrf_token": await csrf_of(client, "/organisation")})
    await sign_in(client, world.actors[Role.CUSTOMER_ADMIN].email)
    assert (await client.get("/notifications/mail")).status == 403
    assert 'href="/notifications/mail"' not in await (await client.get("/notifications")).text()


async def test_a_list_with_filters_it_cannot_use_shows_the_list_and_says_so(
        world: World) -> None:
    from app.domain.licensing import DocumentKind

    held = await world.add_document(DocumentKind.LICENSE, world.child)
    client = world.client
    await sign_in(client, world.actors[Role.CUSTOMER_ADMIN].email)
    response = await client.get("/licenses", params={
        "status": "bogus", "product": "no-such-code", "expires_before": "someday",
        "page": "second", "sort": "colour", "cabinet": world.foreign.id})
    html = " ".join((await response.text()).split())
    assert response.status == 200 and held.number in html
    for said in ("“bogus” is not a status", "No product has the code “no-such-code”",
                 "“someday” is not a date", "“second” is not a page number",
                 "This list cannot be sorted by “colour”; it is sorted by number.",
                 "That organisation is not one you can see"):
        assert said in html, said
    # The organisation page leads to them; a holder filter that works says whose documents
    # these are, and how to see all.
    page = await (await client.get(f"/cabinets/{world.child.id}")).text()
    assert f'href="/licenses?cabinet={world.child.id}"' in page
    assert f'href="/certificates?cabinet={world.child.id}"' in page
    narrowed = " ".join((await (await client.get(
        "/licenses", params={"cabinet": world.child.id})).text()).split())
    assert f"Only what {world.child.name} and the organisations below it hold." in narrowed
    assert held.number in narrowed
    assert '<option value="pending" >Not yet active</option>' in narrowed


async def test_expiring_and_expired_documents_offer_renewal_and_no_stale_license_file(
        world: World) -> None:
    from datetime import date, timedelta

    from app.domain.licensing import DocumentKind

    today = date.today()
    expired = await world.add_document(DocumentKind.LICENSE, world.own,
                                       valid_to=today - timedelta(days=3))
    expiring = await world.add_document(DocumentKind.CERTIFICATE, world.own,
                                        valid_to=today + timedelta(days=10))
    fine = await world.add_document(DocumentKind.LICENSE, world.own,
                                    valid_to=today + timedelta(days=300))
    client = world.client
    await sign_in(client, world.actors[Role.CUSTOMER_USER].email)
    contact = "mailto:sales@hornsandhooves.example?subject=Renewal%20of%20"

    page = " ".join((await (await client.get(f"/licenses/{expired.id}")).text()).split())
    assert "This license expired on" in page and f"{contact}{expired.number}" in page
    assert "format=lic" not in page  # no file the software would refuse
    refused = await client.get(f"/api/v1/licenses/{expired.id}", params={"format": "lic"},
                               headers=world.actors[Role.CUSTOMER_USER].headers)
    assert refused.status == 422 and "renew it" in (await refused.json())["detail"]

    page = " ".join((await (await client.get(f"/certificates/{expiring.id}")).text()).split())
    assert "This support certificate ends on" in page and "Renew or contact us" in page

    page = " ".join((await (await client.get(f"/licenses/{fine.id}")).text()).split())
    assert "Renew or contact us" not in page and "format=lic" in page


async def test_the_download_history_holds_pdfs_and_license_files_with_links(
        world: World) -> None:
    from app.domain.licensing import DocumentKind

    license_ = await world.add_document(DocumentKind.LICENSE, world.own)
    certificate = await world.add_document(DocumentKind.CERTIFICATE, world.own)
    user = world.actors[Role.CUSTOMER_USER].headers
    for url, params in ((f"/api/v1/licenses/{license_.id}", {"format": "pdf"}),
                        (f"/api/v1/licenses/{license_.id}", {"format": "lic"}),
                        (f"/api/v1/certificates/{certificate.id}", {"format": "pdf"})):
        response = await world.client.get(url, params=params, headers=user)
        assert response.status == 200, await response.text()
        await response.read()
    client = world.client
    await sign_in(client, world.actors[Role.CUSTOMER_ADMIN].email)
    text = " ".join((await (await client.get("/downloads")).text()).split())
    assert f'<a href="/licenses/{license_.id}"><code>{license_.number}</code></a>' in text
    assert f'<a href="/certificates/{certificate.id}"><code>{certificate.number}</code>' in text
    assert f"{license_.number}.lic" in text and f"{certificate.number}.pdf" in text
    for what in ("PDF", "license file"):
        assert f'<span class="badge badge-kind">{what}</span>' in text
    assert "DB Guard" in text  # the product's name, not its code


async def test_the_license_list_searches_sorts_and_pages_with_a_count(world: World) -> None:
    from app.domain.licensing import DocumentKind

    own = [await world.add_document(DocumentKind.LICENSE, world.child,
                                    valid_to=date(2030, 1, 1) + timedelta(days=i))
           for i in range(51)]
    perpetual = await world.add_document(DocumentKind.LICENSE, world.child, valid_to=None)
    elsewhere = await world.add_document(DocumentKind.LICENSE, world.foreign)
    client = world.client
    await sign_in(client, world.actors[Role.CUSTOMER_ADMIN].email)
    visible = len(own) + 1  # the world holds no other license

    def numbers_in(html: str) -> list[str]:
        return re.findall(r"<code>(LIC-[0-9-]+)</code>", html)

    first = " ".join((await (await client.get("/licenses")).text()).split())
    assert f"1\N{EN DASH}50 of {visible} licenses" in first
    assert numbers_in(first) == sorted(numbers_in(first)) and len(numbers_in(first)) == 50
    assert 'href="/licenses?page=2"' in first and 'aria-current="page">1<' in first
    second = await (await client.get("/licenses", params={"page": "2"})).text()
    assert set(numbers_in(first)).isdisjoint(numbers_in(second))
    assert sorted(numbers_in(first) + numbers_in(second)) == sorted(
        [d.number for d in own] + [perpetual.number])
    assert elsewhere.number not in first + second
    # Ending last first: the perpetual one, then the latest end date; the header says so.
    latest = " ".join((await (await client.get(
        "/licenses", params={"sort": "-valid_to"})).text()).split())
    assert numbers_in(latest)[:2] == [perpetual.number, own[-1].number]
    assert 'aria-sort="descending"><a class="sort" href="/licenses?sort=valid_to"' in latest
    # Part of a number finds that one license; the search stays in the sort links.
    found = " ".join((await (await client.get(
        "/licenses", params={"q": own[7].number[-6:].lower()})).text()).split())
    assert numbers_in(found) == [own[7].number] and "1\N{EN DASH}1 of 1 licenses" in found
    assert f'href="/licenses?q={own[7].number[-6:].lower()}&amp;sort=-number"' in found
    # A page past the end shows the last one and says so.
    past = " ".join((await (await client.get("/licenses", params={"page": "99"})).text()).split())
    assert "There is no page 99; showing page" in past and numbers_in(past)
    nothing = await (await client.get("/licenses", params={"q": "no such holder"})).text()
    assert "Nothing matches these filters." in nothing and not numbers_in(nothing)


async def test_staff_admins_create_customers_from_the_organisations_page(world: World) -> None:
    client = world.client
    await sign_in(client, world.actors[Role.STAFF_ADMIN].email)
    billing = unique("CUST")
    name = f"Umbrella {unique('corp')}"
    form = {"csrf_token": await csrf_of(client, "/cabinets"), "name": name,
            "external_id": billing, "kind": "customer"}
    made = await client.post("/cabinets", data=form, allow_redirects=False)
    assert made.status == 303 and made.headers["Location"].endswith("?created=1")
    page = " ".join((await (await client.get(made.headers["Location"])).text()).split())
    assert f"{name} was created." in page and f"billing id {billing} arrive here" in page
    # Found by part of its billing id; the newest first when sorted so.
    found = await (await client.get("/cabinets", params={"q": billing[-5:]})).text()
    assert name in found and world.own.name not in found
    newest = await (await client.get("/cabinets", params={"sort": "-created"})).text()
    first_row = newest.split("<tbody>", 1)[1].split("</tr>", 1)[0]
    assert name in first_row
    # The same billing id again: the page again, with why and what was typed.
    again = await client.post("/cabinets", data={**form, "name": "Umbrella again"})
    text = " ".join((await again.text()).split())
    assert again.status == 409 and 'value="Umbrella again"' in text and billing in text
    assert 'class="alert alert-error"' in text
    # A customer administrator is offered no such form, and is refused it.
    await client.post("/logout", data={"csrf_token": await csrf_of(client, "/cabinets")})
    await sign_in(client, world.actors[Role.CUSTOMER_ADMIN].email)
    assert 'id="new-customer"' not in await (await client.get("/cabinets")).text()
    refused = await client.post("/cabinets", data={
        **form, "csrf_token": await csrf_of(client, "/cabinets"), "external_id": ""})
    assert refused.status == 403
    assert "Only staff administrators create top-level organisations." in await refused.text()


async def test_an_administrator_changes_a_users_role_from_the_organisation_page(
        world: World) -> None:
    client = world.client
    user = world.actors[Role.CUSTOMER_USER]
    await sign_in(client, world.actors[Role.CUSTOMER_ADMIN].email)
    page = await (await client.get(f"/cabinets/{world.own.id}")).text()
    assert f'aria-label="Role of {user.email}"' in page
    changed = await client.post(f"/cabinets/{world.own.id}/users/{user.user_id}", data={
        "csrf_token": await csrf_of(client, f"/cabinets/{world.own.id}"),
        "operation": "role", "role": "customer_admin"}, allow_redirects=False)
    assert changed.status == 303
    listed = await (await client.get(f"/cabinets/{world.own.id}")).text()
    row = listed.split(f"<td>{user.email}</td>", 1)[1].split("</tr>", 1)[0]
    assert '<span class="badge badge-role">Customer admin</span>' in row
    # A staff role is not one a customer organisation's user can get.
    refused = await client.post(f"/cabinets/{world.own.id}/users/{user.user_id}", data={
        "csrf_token": await csrf_of(client, f"/cabinets/{world.own.id}"),
        "operation": "role", "role": "staff_admin"})
    assert refused.status in (400, 403, 422), refused.status
    assert 'class="alert alert-error"' in await refused.text()


async def test_the_audit_log_page_filters_pages_and_exports_what_the_reader_may_see(
        world: World) -> None:
    import csv
    import io

    from tests.api.test_users import invite

    client = world.client
    invited = [await invite(world) for _ in range(3)]
    staff = world.actors[Role.STAFF_ADMIN]
    renamed = await client.patch(f"/api/v1/cabinets/{world.foreign.id}", headers=staff.headers,
                                 json={"name": unique("Foreign renamed")})
    assert renamed.status == 200, await renamed.text()
    admin = world.actors[Role.CUSTOMER_ADMIN]
    await sign_in(client, admin.email)
    page = " ".join((await (await client.get("/audit", params={"what": "user"})).text()).split())
    for made in invited:
        assert made["user"]["id"] in page
    assert world.foreign.id not in page and "cabinet.updated" not in page
    # The same filters in the export's link; the CSV holds those entries and only those.
    assert 'href="/audit.csv?what=user"' in page
    exported = await client.get("/audit.csv", params={"what": "user", "who": admin.email[:8]})
    assert exported.status == 200 and exported.content_type == "text/csv"
    assert "attachment" in exported.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(await exported.text())))
    assert rows[0][:3] == ["Time", "Action", "Who"]
    ids = {row[4] for row in rows[1:]}
    assert {made["user"]["id"] for made in invited} <= ids
    assert all(row[1].startswith("user.") and row[2] == admin.email for row in rows[1:])
    # Days: tomorrow onwards holds nothing yet; a day that is not one is said and dropped.
    later = (date.today() + timedelta(days=2)).isoformat()
    empty = await (await client.get("/audit", params={"from": later})).text()
    assert "No entry matches these filters." in empty
    odd = await (await client.get("/audit", params={"to": "yesterday"})).text()
    assert "“yesterday” is not a date (YYYY-MM-DD); it is left out." in odd
    # A customer user reads no audit log, and is not offered one.
    await client.post("/logout", data={"csrf_token": await csrf_of(client, "/audit")})
    await sign_in(client, world.actors[Role.CUSTOMER_USER].email)
    assert 'href="/audit"' not in await (await client.get("/licenses")).text()
    assert (await client.get("/audit.csv")).status == 403


async def test_the_download_history_filters_by_product_person_and_day(world: World) -> None:
    from app.domain.licensing import DocumentKind

    held = await world.add_document(DocumentKind.LICENSE, world.own)
    other_product = await world.add_product()
    other = await world.add_document(DocumentKind.LICENSE, world.own, product=other_product)
    admin, user = world.actors[Role.CUSTOMER_ADMIN], world.actors[Role.CUSTOMER_USER]
    for actor, document in ((admin, held), (user, held), (user, other)):
        response = await world.client.get(f"/api/v1/licenses/{document.id}",
                                          params={"format": "lic"}, headers=actor.headers)
        assert response.status == 200, await response.text()
    client = world.client
    await sign_in(client, admin.email)

    async def rows(**params: str) -> list[str]:
        html = await (await client.get("/downloads", params=params)).text()
        body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
        return [row for row in body.split("<tr>")[1:]]
    assert len(await rows()) == 3
    mine = await rows(who=admin.email.split("@")[0])
    assert len(mine) == 1 and held.number in mine[0]
    of_other = await rows(product=other_product.code)
    assert len(of_other) == 1 and other.number in of_other[0] and user.email in of_other[0]
    assert len(await rows(**{"from": date.today().isoformat(),
                             "to": date.today().isoformat()})) == 3
    assert await rows(to=(date.today() - timedelta(days=1)).isoformat()) == []


async def test_the_notifications_page_counts_pages_and_narrows_by_kind(world: World) -> None:
    from app.domain.licensing import DocumentKind
    from tests.api.test_notifications import MANIFEST, announce

    for n in range(52):
        made = await announce(world, title=f"Notice {n}", cabinet_id=world.own.id)
        assert made.status == 201, await made.text()
    await world.add_document(DocumentKind.LICENSE, world.own)
    await world.publish("9.2", {"fix.bin": b"x"}, manifest=MANIFEST)
    client = world.client
    await sign_in(client, world.actors[Role.CUSTOMER_USER].email)
    first = " ".join((await (await client.get("/notifications")).text()).split())
    assert "53 notifications · 50 on this page" in first
    older = re.search(r'rel="next" href="(/notifications\?cursor=[^"]+)"', first)
    assert older, "no link to older notifications"
    second = " ".join((await (await client.get(older[1])).text()).split())
    assert "3 on this page" in second and "← Newest" in second and 'rel="next"' not in second
    assert "Notice 0" in second and "Notice 0<" not in first
    security = " ".join((await (await client.get(
        "/notifications", params={"kind": "security.published"})).text()).split())
    assert "1 notification of “Security fixes”" in security and "Notice" not in security
    odd = await (await client.get("/notifications", params={"kind": "gossip",
                                                            "cursor": "x"})).text()
    assert "“gossip” is not a kind of notification; showing every kind." in odd
    assert "That page link is out of date; showing the newest." in odd


async def test_staff_administrators_issue_extend_and_revoke_by_hand_with_a_reason(
        world: World) -> None:
    from tests.api.test_notifications import mine

    client = world.client
    await sign_in(client, world.actors[Role.STAFF_ADMIN].email)
    page = f"/cabinets/{world.own.id}"
    form = {"kind": "license", "product_id": world.product.id, "edition": "Trial",
            "seats": "5", "valid_to": "2030-01-31", "reason": ""}
    refused = await client.post(f"{page}/documents", data={
        **form, "csrf_token": await csrf_of(client, page)})
    text = " ".join((await refused.text()).split())
    assert refused.status == 422 and "Say why: the reason goes in the audit log." in text
    assert 'value="Trial"' in text  # what was typed stays
    issued = await client.post(f"{page}/documents", data={
        **form, "reason": "30-day trial agreed with sales",
        "csrf_token": await csrf_of(client, page)}, allow_redirects=False)
    assert issued.status == 303, await issued.text()
    location = issued.headers["Location"]
    assert location.startswith("/licenses/") and location.endswith("?changed=issued")
    document_page = location.split("?")[0]
    shown = " ".join((await (await client.get(location)).text()).split())
    assert "Issued by hand" in shown and "Trial" in shown and "31 Jan 2030" in shown
    number = re.search(r'class="doc-number">(LIC-[0-9-]+)<', shown)
    assert number
    user = world.actors[Role.CUSTOMER_USER]
    told = (await mine(world, user.headers))["items"]
    assert any(n["title"] == f"New license {number[1]}" for n in told)
    organisation = " ".join((await (await client.get(page)).text()).split())
    assert 'Its licenses <span class="count">1</span>' in organisation
    recent = organisation.split('id="history"', 1)[1].split("</section>", 1)[0]
    assert "license.issued" in recent and number[1] in recent

    # Extending: a later day only, with a reason; revoking: with a reason.
    earlier = await client.post(f"{document_page}/extend", data={
        "valid_to": "2029-01-01", "reason": "goodwill",
        "csrf_token": await csrf_of(client, document_page)})
    assert earlier.status == 422
    assert "Choose a day after the current end, 2030-01-31." in await earlier.text()
    extended = await client.post(f"{document_page}/extend", data={
        "valid_to": "2030-06-30", "reason": "goodwill after the outage",
        "csrf_token": await csrf_of(client, document_page)}, allow_redirects=False)
    assert extended.status == 303
    assert "30 Jun 2030" in await (await client.get(document_page)).text()
    revoked = await client.post(f"{document_page}/revoke", data={
        "reason": "replaced by a purchase", "csrf_token": await csrf_of(client, document_page)},
        allow_redirects=False)
    assert revoked.status == 303
    after = " ".join((await (await client.get(revoked.headers["Location"])).text()).split())
    assert "Revoked" in after and 'id="by-hand"' not in after
    told = [n["title"] for n in (await mine(world, user.headers))["items"]]
    assert f"{number[1]} renewed" in told and any(number[1] in t and "revoked" in t.lower()
                                                  for t in told)
    # Each act with its reason, in the organisation's history.
    history = " ".join((await (await client.get(
        "/audit", params={"cabinet": world.own.id, "what": "license"})).text()).split())
    for action, reason in (("license.issued", "30-day trial agreed with sales"),
                           ("license.extended", "goodwill after the outage"),
                           ("license.revoked", "replaced by a purchase")):
        assert action in history and reason in history
    assert f"Only what happened in {world.own.name}" in history
