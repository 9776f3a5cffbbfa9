"""The support pages over HTTP with a browser's cookies: opening a request behind its gate,
the conversation (internal notes for staff only), files streamed from the page's form past
the body limit and behind its CSRF token, the staff's work form, the live parts."""

from __future__ import annotations

import io
import re

import aiohttp

from app.domain.licensing import DocumentKind
from app.domain.roles import Role
from app.web.keys import SERVICES
from tests.api.test_pages import csrf_of, sign_in
from tests.world import World

ISSUE_PATH = re.compile(r"^/support/([0-9a-f-]+)\?opened=1$")


async def open_by_form(world: World, subject: str = "Backups fail", **more: str) -> str:
    token = await csrf_of(world.client, "/support/new")
    response = await world.client.post("/support/new", data={
        "csrf_token": token, "subject": subject, "description": "Every night since Monday.",
        "product_id": world.product.id, "priority": "urgent", **more}, allow_redirects=False)
    assert response.status == 303, await response.text()
    found = ISSUE_PATH.match(response.headers["Location"])
    assert found, response.headers["Location"]
    return found[1]


async def stored_files(world: World, issue_id: str) -> list[str]:
    objects = world.client.app[SERVICES].objects
    return [o.key for o in await objects.list_objects("support", f"issues/{issue_id}/")]


async def test_without_a_valid_certificate_the_page_says_how_to_renew(world: World) -> None:
    await sign_in(world.client, world.actors[Role.CUSTOMER_USER].email)
    form = await (await world.client.get("/support/new")).text()
    assert "A valid support certificate is needed" in form
    assert "mailto:sales@hornsandhooves.example" in form
    token = await csrf_of(world.client, "/support")
    refused = await world.client.post("/support/new", data={
        "csrf_token": token, "subject": "Help", "description": "Please.",
        "product_id": world.product.id})
    assert refused.status == 422
    assert "valid today" in await refused.text()


async def test_a_customer_opens_a_request_and_writes_on_it(world: World) -> None:
    await world.add_document(DocumentKind.CERTIFICATE, world.own)
    license_ = await world.add_document(DocumentKind.LICENSE, world.own)
    await sign_in(world.client, world.actors[Role.CUSTOMER_USER].email)
    form = await (await world.client.get("/support/new")).text()
    assert license_.number in form
    issue_id = await open_by_form(world, license_id=license_.id)
    found = await (await world.client.get(
        f"/api/v1/issues/{issue_id}", headers=world.actors[Role.CUSTOMER_USER].headers)).json()
    assert found["license_id"] == license_.id and found["certificate_id"]
    page = await (await world.client.get(f"/support/{issue_id}?opened=1")).text()
    assert "Backups fail" in page and "is open" in page and "Urgent priority" in page
    token = await csrf_of(world.client, f"/support/{issue_id}")
    said = await world.client.post(f"/support/{issue_id}/comments", data={
        "csrf_token": token, "body": "It says <b>disk full</b>."}, allow_redirects=False)
    assert said.status == 303 and said.headers["Location"].startswith(f"/support/{issue_id}#c-")
    page = await (await world.client.get(f"/support/{issue_id}")).text()
    assert "It says &lt;b&gt;disk full&lt;/b&gt;." in page  # escaped, never markup
    listed = await (await world.client.get("/support?q=backups")).text()
    assert issue_id in listed
    empty = await (await world.client.get("/support?status=closed")).text()
    assert issue_id not in empty and "No request matches these filters." in empty


async def test_staff_work_a_request_and_their_notes_stay_internal(world: World) -> None:
    await world.add_document(DocumentKind.CERTIFICATE, world.own)
    await sign_in(world.client, world.actors[Role.CUSTOMER_USER].email)
    issue_id = await open_by_form(world, "Licence import")
    world.client.session.cookie_jar.clear()
    await sign_in(world.client, world.actors[Role.STAFF].email)
    queue = await (await world.client.get("/support?queue=unassigned")).text()
    assert issue_id in queue
    token = await csrf_of(world.client, f"/support/{issue_id}")
    for body, internal in (("Customer has a tricky setup.", "on"), ("Try the new file.", "")):
        sent = await world.client.post(f"/support/{issue_id}/comments", data={
            "csrf_token": token, "body": body, "internal": internal}, allow_redirects=False)
        assert sent.status == 303
    worked = await world.client.post(f"/support/{issue_id}/update", data={
        "csrf_token": token, "status": "waiting_for_customer", "priority": "high",
        "assign": "me"}, allow_redirects=False)
    assert worked.status == 303
    mine = await (await world.client.get("/support?queue=mine")).text()
    assert issue_id in mine and "Waiting for customer" in mine
    staff_page = await (await world.client.get(f"/support/{issue_id}")).text()
    assert "Customer has a tricky setup." in staff_page and "Internal note" in staff_page

    world.client.session.cookie_jar.clear()
    await sign_in(world.client, world.actors[Role.CUSTOMER_USER].email)
    for path in (f"/support/{issue_id}", f"/support/{issue_id}/live"):
        customer_page = await (await world.client.get(path)).text()
        assert "Try the new file." in customer_page
        assert "tricky setup" not in customer_page and "Internal note" not in customer_page
    assert "Waiting for you" in customer_page


async def test_the_file_form_streams_past_the_body_limit_behind_its_token(
        world: World) -> None:
    await world.add_document(DocumentKind.CERTIFICATE, world.own)
    await sign_in(world.client, world.actors[Role.CUSTOMER_USER].email)
    issue_id = await open_by_form(world)
    token = await csrf_of(world.client, f"/support/{issue_id}")
    path = f"/support/{issue_id}/files"
    big = b"log line\n" * 300_000  # 2.7 MB: more than web.max_body_bytes (1 MiB)

    def form(data: bytes, csrf: str | None, name: str = "collector.log") -> aiohttp.FormData:
        made = aiohttp.FormData()
        if csrf is not None:
            made.add_field("csrf_token", csrf)
        made.add_field("file", io.BytesIO(data), filename=name)
        return made

    forged = await world.client.post(path, data=form(big, "not-the-token"),
                                     allow_redirects=False)
    assert forged.status == 403 and "expired" in await forged.text()
    missing = await world.client.post(path, data=form(big, None), allow_redirects=False)
    assert missing.status == 403
    assert await stored_files(world, issue_id) == []

    sent = await world.client.post(path, data=form(big, token), allow_redirects=False)
    assert sent.status == 303, await sent.text()
    [key] = await stored_files(world, issue_id)
    page = await (await world.client.get(f"/support/{issue_id}")).text()
    assert "collector.log" in page

    limit = world.client.app[SERVICES].conversation.policy.max_attachment_bytes
    too_big = await world.client.post(path, data=form(b"x" * (limit + 1), token),
                                      allow_redirects=False)
    assert too_big.status == 413 and "at most" in await too_big.text()
    wrong_type = await world.client.post(path, data=form(b"MZ", token, "setup.exe"),
                                         allow_redirects=False)
    assert wrong_type.status == 415
    assert await stored_files(world, issue_id) == [key]
