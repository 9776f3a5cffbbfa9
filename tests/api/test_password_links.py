"""Forgot password, and an administrator's "send reset link" / "resend invitation": the
one-time link by e-mail, the same answer for every address, and what setting it ends."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from app.domain.roles import Role
from app.domain.users import SYSTEM
from app.services.users import UserChanges
from app.web.keys import LEFT_ANSWERS, SERVICES
from tests.api.test_pages import csrf_of, sign_in
from tests.world import PASSWORD, World, email, login, mail_texts

NEW_PASSWORD = "an entirely new passphrase"


async def mails_to(world: World, address: str) -> list[str]:
    # The link is made after the answer went: wait for that work first.
    if left := world.client.app[LEFT_ANSWERS].copy():
        await asyncio.wait(left)
    return await mail_texts(world.client, address)


def token_in(text: str) -> str:
    found = re.search(r"/password/set\?token=([\w-]+)", text)
    assert found, text
    return found[1]


async def forgot(world: World, address: str) -> tuple[int, dict[str, Any]]:
    response = await world.client.post("/api/v1/password/forgot", json={"email": address})
    return response.status, await response.json()


async def test_forgot_password_answers_alike_and_mails_a_link_that_works_once(
        world: World) -> None:
    actor = world.actors[Role.CUSTOMER_USER]
    other_login = await login(world.client, actor.email)
    known = await forgot(world, actor.email.upper())
    unknown = await forgot(world, email("nobody"))
    assert known == unknown and known[0] == 202
    assert "link to choose a new password" in known[1]["detail"]

    [mail] = await mails_to(world, actor.email)
    assert "Someone asked for a password link" in mail
    token = token_in(mail)
    page = await world.client.get(f"/password/set?token={token}")
    assert page.status == 200 and actor.email in await page.text()

    spent = await world.client.post("/api/v1/password/set",
                                    json={"token": token, "password": NEW_PASSWORD})
    assert spent.status == 204
    # Every other login ended; the old password no longer works, the new one does.
    refreshed = await world.client.post(
        "/api/v1/jwt/refresh", json={"refresh_token": other_login["refresh_token"]})
    assert refreshed.status == 401
    wrong = await world.client.post("/api/v1/jwt", json={"email": actor.email,
                                                         "password": PASSWORD})
    assert wrong.status == 401
    assert (await login(world.client, actor.email, NEW_PASSWORD))["access_token"]
    again = await world.client.post("/api/v1/password/set",
                                    json={"token": token, "password": "yet another passphrase"})
    body = await again.json()
    assert again.status == 400 and "Forgot your password?" in body["detail"]


async def test_an_account_gets_a_few_links_an_hour_and_a_deactivated_one_none(
        world: World) -> None:
    user_id = await world.add_user(world.own)
    services = world.client.app[SERVICES]
    address = (await services.users.get(SYSTEM, world.own.id, user_id)).email
    for _ in range(5):
        assert (await forgot(world, address))[0] == 202
    # Three links an hour, whatever their kind: the invitation, then two asked for.
    mails = await mails_to(world, address)
    assert len(mails) == 3 and "If you did not ask for this link" in mails[-1]

    await services.users.update(SYSTEM, world.own.id, user_id, UserChanges(active=False))
    assert (await forgot(world, address))[0] == 202
    assert len(await mails_to(world, address)) == 3


async def test_a_malformed_address_is_refused_and_says_nothing_of_accounts(
        world: World) -> None:
    status, body = await forgot(world, "not an address")
    assert status == 422 and body["errors"][0]["field"] == "email"


async def test_an_administrator_sends_a_reset_link_or_the_invitation_again(
        world: World) -> None:
    admin = world.actors[Role.CUSTOMER_ADMIN]
    invited = await world.add_user(world.own)
    user = world.actors[Role.CUSTOMER_USER]

    async def send(user_id: str) -> tuple[int, dict[str, object]]:
        response = await world.client.post(
            f"/api/v1/cabinets/{world.own.id}/users/{user_id}/password-link",
            headers=admin.headers)
        return response.status, await response.json()

    status, sent = await send(invited)
    assert status == 202 and sent["new_account"] is True
    [_, again] = await mails_to(world, str(sent["email"]))  # the invitation, then again
    assert "has no password yet" in again

    status, sent = await send(user.user_id)
    assert status == 202 and (sent["email"], sent["new_account"]) == (user.email, False)
    [reset] = await mails_to(world, user.email)
    assert "An administrator sent you a link to choose a new password" in reset
    token_in(reset)

    services = world.client.app[SERVICES]
    await services.users.update(SYSTEM, world.own.id, invited, UserChanges(active=False))
    status, refused = await send(invited)
    assert status == 409 and "deactivated" in str(refused["detail"])


async def test_a_locked_account_is_told_when_to_come_back_and_about_the_link(
        world: World) -> None:
    actor = world.actors[Role.CUSTOMER_USER]
    for _ in range(10):
        response = await world.client.post("/api/v1/jwt", json={"email": actor.email,
                                                                "password": "wrong guess"})
        if response.status == 429:
            break
    body = await response.json()
    assert response.status == 429
    assert re.search(r"Try again in \d+ (seconds|minutes)", body["detail"]), body
    assert "Forgot your password?" in body["detail"]


async def test_the_pages_ask_for_an_address_and_answer_alike(world: World) -> None:
    login_page = await world.client.get("/login")
    assert 'href="/password/forgot"' in await login_page.text()
    form = await world.client.get("/password/forgot")
    html = await form.text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert form.status == 200 and csrf
    answers = []
    for address in (world.actors[Role.CUSTOMER_ADMIN].email, email("nobody")):
        response = await world.client.post("/password/forgot", data={
            "csrf_token": csrf[1], "email": address})
        answers.append((response.status, (await response.text()).replace(address, "ADDRESS")))
    assert answers[0] == answers[1] and answers[0][0] == 202
    assert "link to choose a new password is on its way" in answers[0][1]
    assert len(await mails_to(world, world.actors[Role.CUSTOMER_ADMIN].email)) == 1


async def test_an_administrator_sends_the_link_from_the_organisation_page(
        world: World) -> None:
    client = world.client
    await sign_in(client, world.actors[Role.CUSTOMER_ADMIN].email)
    user = world.actors[Role.CUSTOMER_USER]
    invited = await world.add_user(world.own)
    page = await (await client.get(f"/cabinets/{world.own.id}")).text()
    assert f'aria-label="Send reset link to {user.email}"' in page
    assert "Resend invitation" in page
    token = await csrf_of(client, f"/cabinets/{world.own.id}")
    response = await client.post(f"/cabinets/{world.own.id}/users/{user.user_id}",
                                 data={"csrf_token": token, "operation": "password-link"})
    html = " ".join((await response.text()).split())
    assert response.status == 200
    assert f"A link to choose a new password went to <strong>{user.email}</strong>" in html
    assert len(await mails_to(world, user.email)) == 1
    response = await client.post(f"/cabinets/{world.own.id}/users/{invited}",
                                 data={"csrf_token": token, "operation": "password-link"})
    assert "The invitation went again" in await response.text()


async def test_setting_a_password_cancels_the_other_links_and_so_does_deactivation(
        world: World) -> None:
    actor = world.actors[Role.CUSTOMER_USER]
    await forgot(world, actor.email)
    await forgot(world, actor.email)
    first, second = [token_in(mail) for mail in await mails_to(world, actor.email)]
    spent = await world.client.post("/api/v1/password/set",
                                    json={"token": second, "password": NEW_PASSWORD})
    assert spent.status == 204
    older = await world.client.post("/api/v1/password/set",
                                    json={"token": first, "password": "someone else's choice"})
    assert older.status == 400  # an earlier e-mail someone saw is worth nothing now

    services = world.client.app[SERVICES]
    invited = await world.add_user(world.own)
    address = (await services.users.get(SYSTEM, world.own.id, invited)).email
    [invitation] = await mails_to(world, address)
    await services.users.update(SYSTEM, world.own.id, invited, UserChanges(active=False))
    await services.users.update(SYSTEM, world.own.id, invited, UserChanges(active=True))
    late = await world.client.post("/api/v1/password/set",
                                   json={"token": token_in(invitation), "password": NEW_PASSWORD})
    assert late.status == 400
