"""The portal as the face of a real django-helpdesk: what customers write is delivered once
(through an outage, a lost answer and two portal processes), counted in django-helpdesk
itself; what agents do there comes back by webhook, once, internal notes never to customers."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from app.domain.licensing import DocumentKind
from app.domain.roles import Role
from app.web.app import create_app
from tests.api.test_operations import TOKEN, samples
from tests.helpdesk import DjangoHelpdeskServer, running_django_helpdesk, until
from tests.world import ClientFactory, SettingsFor, World, build_world

SECRET = "hook-secret-for-tests"
QUICK = {"PORTAL_SUPPORT__DELIVERY_INTERVAL": "0.1", "PORTAL_SUPPORT__RETRY_BASE_SECONDS": "0.1",
         "PORTAL_SUPPORT__RETRY_MAX_SECONDS": "0.5", "PORTAL_SUPPORT__RECONCILE_INTERVAL": "0",
         "PORTAL_METRICS__TOKEN": TOKEN, "PORTAL_METRICS__REFRESH_SECONDS": "0.1"}
Portal = Callable[..., Awaitable[World]]


@pytest.fixture
def portal_on(aiohttp_client: ClientFactory, settings_for: SettingsFor) -> Portal:
    """A portal app (with its delivery worker) working with a django-helpdesk at `api`."""
    async def make(server: DjangoHelpdeskServer, backend: str = "sqlite",
                   api: str | None = None) -> World:
        env = {**server.portal_env(SECRET), **QUICK}
        if api is not None:
            env["PORTAL_SUPPORT__DJANGO_HELPDESK__URL"] = api
        client = await aiohttp_client(create_app(settings_for(backend, **env)))
        world = await build_world(client)
        await world.add_document(DocumentKind.CERTIFICATE, world.own)
        return world
    return make


async def open_request(world: World, subject: str = "Agent crashes") -> dict[str, Any]:
    response = await world.client.post(
        "/api/v1/issues", headers=world.actors[Role.CUSTOMER_USER].headers,
        json={"subject": subject, "description": "Since 2.0 it stops at night.",
              "product_id": world.product.id, "priority": "high"})
    assert response.status == 201, await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def comment(world: World, issue: dict[str, Any], body: str) -> dict[str, Any]:
    response = await world.client.post(f"/api/v1/issues/{issue['id']}/comments",
                                       headers=world.actors[Role.CUSTOMER_USER].headers,
                                       json={"body": body})
    assert response.status == 201, await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def attach(world: World, issue: dict[str, Any], name: str, data: bytes) -> dict[str, Any]:
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(data), filename=name)
    response = await world.client.post(f"/api/v1/issues/{issue['id']}/attachments", data=form,
                                       headers=world.actors[Role.CUSTOMER_USER].headers)
    assert response.status == 201, await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def detail(world: World, issue: dict[str, Any], role: Role = Role.CUSTOMER_USER
                 ) -> dict[str, Any]:
    response = await world.client.get(f"/api/v1/issues/{issue['id']}",
                                      headers=world.actors[role].headers)
    assert response.status == 200
    return await response.json()  # type: ignore[no-any-return]


async def delivered(world: World, issue: dict[str, Any]) -> dict[str, Any] | None:
    found = await detail(world, issue)
    return found if found["delivery"] == "delivered" and found["undelivered"] == 0 else None


async def in_helpdesk(server: DjangoHelpdeskServer, portal_id: str) -> list[dict[str, Any]]:
    """The tickets of django-helpdesk that carry this request's portal id."""
    return await server.tickets_with(f"Portal ref: {portal_id}")


def followups_with(ticket: dict[str, Any], portal_id: str) -> list[dict[str, Any]]:
    return [f for f in ticket["followup_set"] if f"Portal ref: {portal_id}" in f["comment"]]


async def test_a_request_reaches_the_helpdesk_and_the_agents_work_comes_back(
        portal_on: Portal, django_helpdesk: DjangoHelpdeskServer) -> None:
    world = await portal_on(django_helpdesk)
    django_helpdesk.send_webhooks_to(str(world.client.make_url(
        f"/api/v1/feed/helpdesk/{SECRET}")))
    try:
        issue = await open_request(world)
        said = await comment(world, issue, "It logs {{ ticket.secret_key }} then stops.")
        await attach(world, issue, "agent.log", b"trace lines")
        await until(lambda: delivered(world, issue))
        [ticket] = await in_helpdesk(django_helpdesk, issue["id"])
        assert ticket["title"] == "Agent crashes" and ticket["priority"] == 2
        assert issue["number"] in ticket["description"]
        full = await django_helpdesk.ticket(str(ticket["id"]))
        assert len(followups_with(full, said["id"])) == 1
        files = [a for f in full["followup_set"] for a in f["followupattachment_set"]]
        assert [(a["filename"], a["size"]) for a in files] == [("agent.log", 11)]

        # The agent answers with a file, notes something for colleagues, then resolves.
        await django_helpdesk.reply(str(ticket["id"]), "Fixed in 2.0.1, patch attached.",
                                    file=("patch.txt", b"the patch"))
        await django_helpdesk.reply(str(ticket["id"]), "Customer is on the old plan.",
                                    public=False)
        answered = await until(lambda: _with_comment(world, issue, "Fixed in 2.0.1"))
        assert answered["first_response_at"] is not None and answered["status"] == "open"
        assert "old plan" not in json.dumps(answered)
        staff_view = await detail(world, issue, Role.STAFF)
        notes = [c for c in staff_view["comments"] if "old plan" in c["body"]]
        assert len(notes) == 1 and notes[0]["internal"] is True
        patch = next(a for a in answered["attachments"] if a["filename"] == "patch.txt")
        got = await world.client.get(patch["download_url"],
                                     headers=world.actors[Role.CUSTOMER_USER].headers)
        assert await got.read() == b"the patch"

        await django_helpdesk.reply(str(ticket["id"]), "", new_status=3)
        resolved = await until(lambda: _with_status(world, issue, "resolved"))
        assert resolved["resolved_at"] is not None

        # A webhook said again changes nothing and tells nobody again.
        kinds = await _notification_kinds(world)
        assert kinds.count("issue.commented") == 1 and kinds.count("issue.updated") == 1
        replay = await world.client.post(f"/api/v1/feed/helpdesk/{SECRET}", json={
            "ticket": {"id": ticket["id"]}, "followup_id": 1})
        assert replay.status == 200 and await replay.json() == {"applied": 0}
        assert await _notification_kinds(world) == kinds
        forged = await world.client.post("/api/v1/feed/helpdesk/not-the-secret",
                                         json={"ticket": {"id": ticket["id"]}})
        assert forged.status == 401
    finally:
        django_helpdesk.send_webhooks_to(None)


async def _with_comment(world: World, issue: dict[str, Any], text: str) -> dict[str, Any] | None:
    found = await detail(world, issue)
    return found if any(text in c["body"] for c in found["comments"]) else None


async def _with_status(world: World, issue: dict[str, Any], status: str) -> dict[str, Any] | None:
    found = await detail(world, issue)
    return found if found["status"] == status else None


async def _notification_kinds(world: World) -> list[str]:
    listed = await (await world.client.get(
        "/api/v1/notifications?limit=100",
        headers=world.actors[Role.CUSTOMER_USER].headers)).json()
    return [n["kind"] for n in listed["items"]]


async def test_nothing_is_lost_while_the_helpdesk_is_down(
        portal_on: Portal, tmp_path: Path) -> None:
    with running_django_helpdesk(tmp_path / "helpdesk") as server:
        world = await portal_on(server)
        server.stop()
        issues = [await open_request(world, f"Outage {n}") for n in range(3)]
        comments = [await comment(world, issue, f"More about {issue['number']}")
                    for issue in issues]
        upload = await attach(world, issues[0], "dump.txt", b"x" * 70_000)
        await asyncio.sleep(1.0)  # the worker tries, and fails, a few times meanwhile
        for issue in issues:
            waiting = await detail(world, issue)
            assert waiting["delivery"] == "pending" and waiting["undelivered"] >= 2
            assert [c["delivery"] for c in waiting["comments"]] == ["pending"]
        listed = await world.client.get("/api/v1/issues",
                                        headers=world.actors[Role.CUSTOMER_USER].headers)
        assert len((await listed.json())["items"]) == 3
        # What operators see: 3 tickets, 3 comments and a file waiting, tried again and again.
        waiting = await helpdesk_figures(world)
        assert waiting["depth"] == 7 and waiting["retried"] >= 3 and waiting["delivered"] == 0

        server.start()
        for issue in issues:
            await until(lambda issue=issue: delivered(world, issue), timeout=30)
        await asyncio.sleep(0.3)  # measured again
        done = await helpdesk_figures(world)
        assert done["depth"] == 0 and done["delivered"] == 7 and done["failed"] == 0
        for issue, said in zip(issues, comments, strict=True):
            [ticket] = await in_helpdesk(server, issue["id"])
            full = await server.ticket(str(ticket["id"]))
            assert len(followups_with(full, said["id"])) == 1
        [first] = await in_helpdesk(server, issues[0]["id"])
        full = await server.ticket(str(first["id"]))
        assert len(followups_with(full, upload["id"])) == 1
        files = [a for f in full["followup_set"] for a in f["followupattachment_set"]]
        assert [(a["filename"], a["size"]) for a in files] == [("dump.txt", 70_000)]


async def helpdesk_figures(world: World) -> dict[str, float]:
    """The helpdesk delivery queue's metrics, as Prometheus would scrape them."""
    response = await world.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 200
    found = samples(await response.text())
    return {what: found[(f"portal_helpdesk_{name}", ())] for what, name in (
        ("depth", "delivery_depth"), ("delivered", "delivered_total"),
        ("retried", "delivery_retried_total"), ("failed", "delivery_failed_total"))}


class LosingProxy:
    """Between the portal and django-helpdesk: hands the first POST to each listed path on,
    then drops the connection before its answer reaches the portal."""

    def __init__(self, upstream: str, lose: set[str]) -> None:
        self.upstream = upstream.rstrip("/")
        self.lose = set(lose)
        self.lost: list[str] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("host", "content-length", "transfer-encoding")}
        async with aiohttp.ClientSession() as session, session.request(
                request.method, self.upstream + request.path_qs, headers=headers,
                data=await request.read()) as answer:
            body = await answer.read()
            status, kind = answer.status, answer.content_type
        if request.method == "POST" and request.path in self.lose:
            self.lose.discard(request.path)
            self.lost.append(request.path)
            assert request.transport is not None
            request.transport.close()  # made there; the answer never arrives
        return web.Response(status=status, body=body, content_type=kind)


@pytest.fixture
async def losing_proxy(django_helpdesk: DjangoHelpdeskServer, aiohttp_server: Any
                       ) -> AsyncIterator[tuple[LosingProxy, str]]:
    proxy = LosingProxy(django_helpdesk.url, {"/api/tickets/", "/api/followups/"})
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    server = await aiohttp_server(app)
    yield proxy, str(server.make_url("/api/"))


async def test_a_lost_answer_makes_no_second_ticket_or_comment(
        portal_on: Portal, django_helpdesk: DjangoHelpdeskServer,
        losing_proxy: tuple[LosingProxy, str]) -> None:
    proxy, api = losing_proxy
    world = await portal_on(django_helpdesk, api=api)
    issue = await open_request(world, "Lost answers")
    await until(lambda: delivered(world, issue), timeout=30)
    said = await comment(world, issue, "Still there?")
    await until(lambda: delivered(world, issue), timeout=30)
    assert proxy.lost == ["/api/tickets/", "/api/followups/"]
    [ticket] = await in_helpdesk(django_helpdesk, issue["id"])
    full = await django_helpdesk.ticket(str(ticket["id"]))
    assert len(followups_with(full, said["id"])) == 1


@pytest.mark.postgres
async def test_two_portal_processes_deliver_each_item_once(
        portal_on: Portal, django_helpdesk: DjangoHelpdeskServer) -> None:
    first = await portal_on(django_helpdesk, "postgres")
    await portal_on(django_helpdesk, "postgres")  # a second worker on the same database
    issues = [await open_request(first, f"Twice {n}") for n in range(6)]
    said = [await comment(first, issue, "Any news?") for issue in issues]
    for issue in issues:
        await until(lambda issue=issue: delivered(first, issue), timeout=30)
    for issue, note in zip(issues, said, strict=True):
        [ticket] = await in_helpdesk(django_helpdesk, issue["id"])
        full = await django_helpdesk.ticket(str(ticket["id"]))
        assert len(followups_with(full, note["id"])) == 1



async def delivered_without_webhook(
        aiohttp_client: ClientFactory, settings_for: SettingsFor,
        server: DjangoHelpdeskServer, subject: str, **env: str
        ) -> tuple[World, dict[str, Any], dict[str, Any]]:
    """A portal that gets no webhook, one of its requests, and that request's ticket in
    django-helpdesk once delivered."""
    settings = settings_for("sqlite", **{**server.portal_env(""), **QUICK, **env})
    world = await build_world(await aiohttp_client(create_app(settings)))
    await world.add_document(DocumentKind.CERTIFICATE, world.own)
    issue = await open_request(world, subject)
    await until(lambda: delivered(world, issue))
    [ticket] = await in_helpdesk(server, issue["id"])
    return world, issue, ticket


async def test_a_lost_webhook_only_delays_the_answer(
        aiohttp_client: ClientFactory, settings_for: SettingsFor,
        django_helpdesk: DjangoHelpdeskServer) -> None:
    # No webhook reaches this portal: reconciliation asks what changed, every half second.
    world, issue, ticket = await delivered_without_webhook(
        aiohttp_client, settings_for, django_helpdesk, "Nobody calls back",
        PORTAL_SUPPORT__RECONCILE_INTERVAL="0.5")
    await django_helpdesk.reply(str(ticket["id"]), "Found it: a proxy timeout.")
    await django_helpdesk.reply(str(ticket["id"]), "", new_status=4)
    closed = await until(lambda: _with_status(world, issue, "closed"), timeout=20)
    assert [c["body"] for c in closed["comments"]] == ["Found it: a proxy timeout."]
    await asyncio.sleep(1.2)  # two more rounds of reconciliation change nothing
    assert (await detail(world, issue))["comments"] == closed["comments"]
    assert (await _notification_kinds(world)).count("issue.commented") == 1


async def test_the_signed_feed_names_changed_tickets(
        aiohttp_client: ClientFactory, settings_for: SettingsFor,
        django_helpdesk: DjangoHelpdeskServer) -> None:
    from tests.feed import signature

    world, issue, ticket = await delivered_without_webhook(
        aiohttp_client, settings_for, django_helpdesk, "Told by the feed",
        PORTAL_SUPPORT__FEED_SECRET="feed-secret-for-tests")
    await django_helpdesk.reply(str(ticket["id"]), "Answered; the feed says so.")
    body = json.dumps({"tickets": [str(ticket["id"])]}).encode()
    headers = {"Content-Type": "application/json",
               "X-Portal-Signature": signature(body, secret="feed-secret-for-tests")}
    told = await world.client.post("/api/v1/feed/support", data=body, headers=headers)
    assert told.status == 200 and await told.json() == {"applied": 1}
    again = await world.client.post("/api/v1/feed/support", data=body, headers=headers)
    assert await again.json() == {"applied": 0}
    found = await detail(world, issue)
    assert [c["body"] for c in found["comments"]] == ["Answered; the feed says so."]
    forged = await world.client.post("/api/v1/feed/support", data=body, headers={
        "Content-Type": "application/json",
        "X-Portal-Signature": signature(body, secret="not-the-secret")})
    assert forged.status == 401
