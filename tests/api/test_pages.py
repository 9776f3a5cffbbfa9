"""The browser portal over HTTP: cookie sessions, CSRF, rotation on expiry, sign-out."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from app.domain.roles import Role
from tests.world import PASSWORD, World, email

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


async def csrf_of(client: TestClient, path: str = "/login") -> str:
    page = await (await client.get(path)).text()
    match = CSRF.search(page)
    assert match, page
    return match[1]


async def sign_in(client: TestClient, address: str, password: str = PASSWORD,
                  next_path: str = "/") -> None:
    token = await csrf_of(client)
    response = await client.post("/login", data={
        "email": address, "password": password, "csrf_token": token, "next": next_path},
        allow_redirects=False)
    assert response.status == 303, await response.text()


def cookie(client: TestClient, name: str) -> str | None:
    found = [c for c in client.session.cookie_jar if c.key == name]
    return found[0].value if found else None


async def test_signed_out_pages_redirect_to_login_with_next(client: TestClient) -> None:
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
