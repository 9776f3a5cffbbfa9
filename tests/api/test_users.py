"""Users of cabinets: invitations, set-password links, changes, removal, mass assignment."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse

from app.domain.roles import Role
from app.web.keys import SERVICES
from tests.world import World, email, login


async def invite(world: World, role: str = "customer_user", cabinet_id: str | None = None,
                 actor: Role = Role.CUSTOMER_ADMIN) -> dict:  # type: ignore[type-arg]
    response = await world.client.post(
        f"/api/v1/cabinets/{cabinet_id or world.own.id}/users",
        headers=world.actors[actor].headers,
        json={"email": email("invited"), "name": "New Person", "role": role})
    assert response.status == 201, await response.text()
    return await response.json()  # type: ignore[no-any-return]


def token_of(url: str) -> str:
    return parse_qs(urlparse(url).query)["token"][0]


async def test_invited_user_sets_a_password_once_and_signs_in(world: World) -> None:
    created = await invite(world)
    assert created["user"]["has_password"] is False
    assert created["set_password_url"].startswith("http://127.0.0.1:8080/password/set?token=")
    token = token_of(created["set_password_url"])

    response = await world.client.post("/api/v1/password/set",
                                       json={"token": token, "password": "a brand new secret"})
    assert response.status == 204
    tokens = await login(world.client, created["user"]["email"], "a brand new secret")
    mine = await world.client.get("/api/v1/notifications", headers={
        "Authorization": f"Bearer {tokens['access_token']}"})
    [welcome] = (await mine.json())["items"]  # the invitation greets them
    assert welcome["kind"] == "user.invited" and welcome["link"] == "/notifications/settings"
    assert world.own.name in welcome["body"]

    again = await world.client.post("/api/v1/password/set",
                                    json={"token": token, "password": "another new secret"})
    assert again.status == 400
    assert (await again.json())["type"] == "/problems/invalid-token"


async def test_short_passwords_are_refused_without_spending_the_link(world: World) -> None:
    created = await invite(world)
    token = token_of(created["set_password_url"])
    short = await world.client.post("/api/v1/password/set",
                                    json={"token": token, "password": "short"})
    assert short.status == 422
    assert (await short.json())["errors"][0]["field"] == "password"
    ok = await world.client.post("/api/v1/password/set",
                                 json={"token": token, "password": "long enough now"})
    assert ok.status == 204


async def test_emails_are_unique_case_insensitively(world: World) -> None:
    created = await invite(world)
    response = await world.client.post(
        f"/api/v1/cabinets/{world.child.id}/users",
        headers=world.actors[Role.CUSTOMER_ADMIN].headers,
        json={"email": created["user"]["email"].upper(), "role": "customer_user"})
    assert response.status == 409
    assert (await response.json())["errors"][0]["field"] == "email"


async def test_customer_admin_cannot_hand_out_staff_roles(world: World) -> None:
    admin = world.actors[Role.CUSTOMER_ADMIN]
    for role in ("staff", "staff_admin"):
        response = await world.client.post(f"/api/v1/cabinets/{world.own.id}/users",
                                           headers=admin.headers,
                                           json={"email": email("x"), "role": role})
        assert response.status == 403, role
    # Even staff admins cannot put a staff role into a customer cabinet.
    response = await world.client.post(f"/api/v1/cabinets/{world.own.id}/users",
                                       headers=world.actors[Role.STAFF_ADMIN].headers,
                                       json={"email": email("x"), "role": "staff"})
    assert response.status == 422


async def test_mass_assignment_is_refused(world: World) -> None:
    user = world.actors[Role.CUSTOMER_USER]
    admin = world.actors[Role.CUSTOMER_ADMIN]
    own_path = f"/api/v1/cabinets/{world.own.id}/users/{user.user_id}"
    raise_self = await world.client.patch(own_path, headers=user.headers,
                                          json={"role": "customer_admin"})
    assert raise_self.status == 403
    move = await world.client.patch(own_path, headers=admin.headers,
                                    json={"cabinet_id": world.child.id})
    assert move.status == 422
    assert (await move.json())["errors"][0]["field"] == "cabinet_id"
    hash_injection = await world.client.post(
        f"/api/v1/cabinets/{world.own.id}/users", headers=admin.headers,
        json={"email": email("x"), "password_hash": "$argon2id$forged"})
    assert hash_injection.status == 422
    admin_self = await world.client.patch(
        f"/api/v1/cabinets/{world.own.id}/users/{admin.user_id}", headers=admin.headers,
        json={"role": "customer_user"})
    assert admin_self.status == 403
    me = await (await world.client.get("/api/v1/me", headers=user.headers)).json()
    assert me["role"] == "customer_user" and me["cabinet"]["id"] == world.own.id


async def test_customer_admin_cannot_touch_a_staff_member_or_a_higher_role(world: World) -> None:
    # A staff admin placed a customer admin in the child; the parent's admin may manage them.
    created = await invite(world, "customer_admin", world.child.id, actor=Role.STAFF_ADMIN)
    admin = world.actors[Role.CUSTOMER_ADMIN]
    response = await world.client.patch(
        f"/api/v1/cabinets/{world.child.id}/users/{created['user']['id']}",
        headers=admin.headers, json={"role": "customer_user"})
    assert response.status == 200
    assert (await response.json())["role"] == "customer_user"


async def test_a_role_change_ends_the_users_logins(world: World) -> None:
    user = world.actors[Role.CUSTOMER_USER]
    admin = world.actors[Role.CUSTOMER_ADMIN]
    path = f"/api/v1/cabinets/{world.own.id}/users/{user.user_id}"
    promoted = await world.client.patch(path, headers=admin.headers,
                                        json={"role": "customer_admin", "name": "Promoted"})
    body = await promoted.json()
    assert body["role"] == "customer_admin" and body["name"] == "Promoted"
    stale = await world.client.get("/api/v1/me", headers=user.headers)
    assert stale.status == 401


async def test_deleted_user_is_gone_and_the_address_can_be_invited_again(world: World) -> None:
    created = await invite(world)
    admin = world.actors[Role.CUSTOMER_ADMIN]
    path = f"/api/v1/cabinets/{world.own.id}/users/{created['user']['id']}"
    assert (await world.client.delete(path, headers=admin.headers)).status == 204
    assert (await world.client.patch(path, headers=admin.headers,
                                     json={"name": "Ghost"})).status == 404
    listed = await (await world.client.get(f"/api/v1/cabinets/{world.own.id}/users",
                                           headers=admin.headers)).json()
    assert created["user"]["id"] not in {u["id"] for u in listed["items"]}
    again = await world.client.post(f"/api/v1/cabinets/{world.own.id}/users",
                                    headers=admin.headers,
                                    json={"email": created["user"]["email"]})
    assert again.status == 201


async def test_nobody_deletes_themselves(world: World) -> None:
    admin = world.actors[Role.CUSTOMER_ADMIN]
    response = await world.client.delete(
        f"/api/v1/cabinets/{world.own.id}/users/{admin.user_id}", headers=admin.headers)
    assert response.status == 403


async def test_a_user_is_only_found_in_its_own_cabinet(world: World) -> None:
    admin = world.actors[Role.CUSTOMER_ADMIN]
    user = world.actors[Role.CUSTOMER_USER]
    response = await world.client.patch(
        f"/api/v1/cabinets/{world.child.id}/users/{user.user_id}", headers=admin.headers,
        json={"name": "Wrong Cabinet"})
    assert response.status == 404


async def test_user_list_is_paged(world: World) -> None:
    admin = world.actors[Role.CUSTOMER_ADMIN]
    for _ in range(3):
        await invite(world)
    first = await (await world.client.get(f"/api/v1/cabinets/{world.own.id}/users",
                                          params={"limit": "3"}, headers=admin.headers)).json()
    assert len(first["items"]) == 3 and first["next_cursor"]
    rest = await (await world.client.get(
        f"/api/v1/cabinets/{world.own.id}/users",
        params={"limit": "3", "cursor": first["next_cursor"]}, headers=admin.headers)).json()
    ids = [u["id"] for u in first["items"] + rest["items"]]
    assert len(ids) == len(set(ids)) == 5  # the two world users and three invited
    assert rest["next_cursor"] is None


async def test_the_invitation_is_e_mailed_with_the_set_password_link(world: World) -> None:
    created = await invite(world)
    address = created["user"]["email"]
    # Queued with the user; the outbox worker's sending is the outbox tests' business (and
    # the database the PostgreSQL run shares holds the whole suite's mail before this one).
    async with world.client.app[SERVICES].storage.unit_of_work() as uow:
        [queued] = await uow.outbox.list_recent(10, recipient=address.upper())
    assert queued.recipient == f"New Person <{address}>"
    assert queued.subject == "Your account in the Horns & Hooves customer portal"
    assert created["set_password_url"] in queued.text_body
    assert f'href="{created["set_password_url"]}"' in (queued.html_body or "")


async def test_a_user_shows_when_they_last_signed_in(world: World) -> None:
    admin = world.actors[Role.CUSTOMER_ADMIN]
    invited = await invite(world)
    await login(world.client, world.actors[Role.CUSTOMER_USER].email)
    listed = await (await world.client.get(f"/api/v1/cabinets/{world.own.id}/users",
                                           headers=admin.headers)).json()
    by_email = {u["email"]: u for u in listed["items"]}
    assert by_email[invited["user"]["email"]]["last_sign_in_at"] is None
    signed_in = by_email[world.actors[Role.CUSTOMER_USER].email]["last_sign_in_at"]
    assert signed_in is not None and signed_in.startswith(str(datetime.now(UTC).year))
