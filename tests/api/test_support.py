"""Support requests over HTTP: the exact paths of the brief, the gate, uploads refused
while read, safe names and downloads, and what only staff see."""

from __future__ import annotations

import io
from typing import Any

import aiohttp

from app.domain.licensing import DocumentKind
from app.domain.roles import Role
from app.web.keys import SERVICES
from tests.world import World


async def opened(world: World, role: Role = Role.CUSTOMER_USER, **extra: Any) -> dict[str, Any]:
    await world.add_document(DocumentKind.CERTIFICATE, world.own)
    response = await world.client.post("/api/v1/issues", headers=world.actors[role].headers,
                                       json={"subject": "Agent crashes", "description":
                                             "After 2.0 it stops.", "product_id":
                                             world.product.id, **extra})
    assert response.status == 201, await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def upload(world: World, issue_id: str, name: str, data: bytes,
                 role: Role = Role.CUSTOMER_USER) -> aiohttp.ClientResponse:
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(data), filename=name,
                   content_type="application/x-anything")
    return await world.client.post(f"/api/v1/issues/{issue_id}/attachments", data=form,
                                   headers=world.actors[role].headers)


async def test_a_request_opens_behind_a_valid_certificate_with_its_targets(
        world: World) -> None:
    headers = world.actors[Role.CUSTOMER_USER].headers
    refused = await world.client.post("/api/v1/issues", headers=headers, json={
        "subject": "Help", "description": "Please.", "product_id": world.product.id})
    assert refused.status == 422
    problem = await refused.json()
    assert problem["errors"][0]["field"] == "certificate_id"
    assert "valid today" in problem["detail"]

    issue = await opened(world, priority="urgent")
    assert issue["number"].startswith("SR-") and issue["status"] == "new"
    assert issue["priority"] == "urgent" and issue["level"] == "premium"
    assert issue["product_name"] == "DB Guard" and issue["cabinet_id"] == world.own.id
    assert issue["delivery"] == "delivered" and issue["undelivered"] == 0
    assert issue["sla_breached"] is False and issue["first_response_at"] is None
    listed = await (await world.client.get(f"/api/v1/issues?q={issue['number']}",
                                           headers=headers)).json()
    assert [i["id"] for i in listed["items"]] == [issue["id"]]
    unknown = await world.client.get("/api/v1/issues?status=lost", headers=headers)
    assert unknown.status == 400


async def test_internal_notes_never_reach_the_customer(world: World) -> None:
    issue = await opened(world)
    staff = world.actors[Role.STAFF].headers
    path = f"/api/v1/issues/{issue['id']}/comments"
    note = await world.client.post(path, headers=staff,
                                   json={"body": "VIP, careful.", "internal": True})
    assert note.status == 201 and (await note.json())["internal"] is True
    reply = await world.client.post(path, headers=staff, json={"body": "Fixed in 2.0.1."})
    assert reply.status == 201
    customer = world.actors[Role.CUSTOMER_USER].headers
    forged = await world.client.post(path, headers=customer,
                                     json={"body": "x", "internal": True})
    assert forged.status == 403
    for url in (path, f"/api/v1/issues/{issue['id']}"):
        text = await (await world.client.get(url, headers=customer)).text()
        assert "Fixed in 2.0.1." in text and "VIP, careful." not in text
    staff_view = await (await world.client.get(f"/api/v1/issues/{issue['id']}",
                                               headers=staff)).json()
    assert [c["body"] for c in staff_view["comments"]] == ["VIP, careful.", "Fixed in 2.0.1."]
    assert staff_view["first_response_at"] is not None
    notifications = await (await world.client.get("/api/v1/notifications",
                                                  headers=customer)).json()
    assert [n["kind"] for n in notifications["items"]].count("issue.commented") == 1


async def test_an_upload_over_the_limit_is_413_and_nothing_is_kept(
        world: World) -> None:
    issue = await opened(world)
    services = world.client.app[SERVICES]
    before = await services.objects.list_objects("support", "", limit=10_000)
    limit = services.conversation.policy.max_attachment_bytes
    too_big = await upload(world, issue["id"], "huge.log", b"x" * (limit + 1))
    assert too_big.status == 413
    assert (await too_big.json())["type"] == "/problems/payload-too-large"
    assert await services.objects.list_objects("support", "", limit=10_000) == before
    exe = await upload(world, issue["id"], "setup.exe", b"MZ")
    assert exe.status == 415
    not_multipart = await world.client.post(
        f"/api/v1/issues/{issue['id']}/attachments", data=b"raw",
        headers={**world.actors[Role.CUSTOMER_USER].headers,
                 "Content-Type": "application/octet-stream"})
    assert not_multipart.status == 400
    attachments = await (await world.client.get(
        f"/api/v1/issues/{issue['id']}/attachments",
        headers=world.actors[Role.CUSTOMER_USER].headers)).json()
    assert attachments["items"] == []


async def test_a_file_keeps_a_safe_name_and_downloads_as_an_attachment(world: World) -> None:
    issue = await opened(world)
    # Written by hand: aiohttp's client refuses to send such names, a hostile one would.
    def part(filename: str) -> bytes:
        return (f'--b0undary\r\nContent-Disposition: form-data; name="file"; '
                f'filename="{filename}"\r\nContent-Type: text/plain\r\n\r\n'
                f"secret lines\r\n--b0undary--\r\n").encode()

    path = f"/api/v1/issues/{issue['id']}/attachments"
    headers = {**world.actors[Role.CUSTOMER_USER].headers,
               "Content-Type": "multipart/form-data; boundary=b0undary"}
    bell = await world.client.post(path, data=part("pass\x07wd.txt"), headers=headers)
    assert bell.status == 400 and (await bell.json())["errors"][0]["field"] == "file"
    sent = await world.client.post(path, data=part('../..\\etc/\\"pass wd\\".txt'),
                                   headers=headers)
    assert sent.status == 201, await sent.text()
    attachment = await sent.json()
    assert attachment["filename"] == "_pass wd_.txt"
    assert attachment["size"] == 12 and len(attachment["sha256"]) == 64
    services = world.client.app[SERVICES]
    keys = [o.key for o in await services.objects.list_objects(
        "support", f"issues/{issue['id']}/")]
    assert keys == [f"issues/{issue['id']}/{attachment['id']}"]
    got = await world.client.get(attachment["download_url"],
                                 headers=world.actors[Role.CUSTOMER_ADMIN].headers)
    assert got.status == 200 and await got.read() == b"secret lines"
    assert got.headers["Content-Disposition"].startswith('attachment; filename="_pass wd_.txt"')
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in got.headers["Content-Security-Policy"]
    assert got.content_type == "text/plain"
    anonymous = await world.client.get(attachment["download_url"])
    assert anonymous.status == 401


async def test_customers_close_and_reopen_and_only_staff_change_the_rest(world: World) -> None:
    issue = await opened(world)
    path = f"/api/v1/issues/{issue['id']}"
    customer = world.actors[Role.CUSTOMER_USER].headers
    staff = world.actors[Role.STAFF]
    assert (await world.client.patch(path, headers=customer,
                                     json={"priority": "low"})).status == 403
    assert (await world.client.patch(path, headers=customer,
                                     json={"status": "resolved"})).status == 422
    assert (await world.client.patch(path, headers=customer,
                                     json={"subject": None})).status == 422
    worked = await world.client.patch(path, headers=staff.headers, json={
        "status": "waiting_for_customer", "assignee_id": staff.user_id})
    assert worked.status == 200
    body = await worked.json()
    assert body["status"] == "waiting_for_customer" and body["assignee_name"] == "Staff"
    closed = await (await world.client.patch(path, headers=customer,
                                             json={"status": "closed"})).json()
    assert closed["status"] == "closed" and closed["resolved_at"] is not None
    late = await world.client.post(f"{path}/comments", headers=customer,
                                   json={"body": "One more thing"})
    assert late.status == 409
    reopened = await (await world.client.patch(path, headers=customer,
                                               json={"status": "open"})).json()
    assert reopened["status"] == "open" and reopened["resolved_at"] is None
    unassigned = await (await world.client.patch(path, headers=staff.headers,
                                                 json={"assignee_id": None})).json()
    assert unassigned["assignee_name"] is None


async def test_the_support_feed_wants_its_signature(world: World) -> None:
    from tests.feed import signature

    body = b'{"tickets": ["T1"]}'
    unsigned = await world.client.post("/api/v1/feed/support", data=body,
                                       headers={"Content-Type": "application/json"})
    assert unsigned.status == 401
    signed = await world.client.post("/api/v1/feed/support", data=body, headers={
        "Content-Type": "application/json",
        "X-Portal-Signature": signature(body, secret="test-support-secret")})
    assert signed.status == 200 and await signed.json() == {"applied": 0}
    webhook = await world.client.post("/api/v1/feed/helpdesk/guess", data=b"{}")
    assert webhook.status == 401  # the portal's own helpdesk sends none
