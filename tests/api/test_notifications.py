"""Notifications: who is told what, reading and managing one's own, announcements, settings,
and the live stream with its replay."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import ClientResponse

from adapters.system import Uuid7Ids
from app.domain.events import NotificationsCreated
from app.domain.licensing import DocumentKind
from app.domain.notifications import Batch, Message, NotificationKind
from app.domain.roles import Role
from app.domain.users import SYSTEM, User
from app.services.notifier import INLINE_RECIPIENTS
from app.web.api import notifications as notifications_api
from app.web.keys import HUB, SERVICES
from tests.world import PASSWORD, World, email, login

MANIFEST = "kind: security\ntitle: Critical fix\n"


async def a_foreign_user(world: World) -> dict[str, str]:
    """Headers of a customer user in the foreign cabinet."""
    address = email("foreign")
    await world.client.app[SERVICES].users.create_with_password(
        SYSTEM, world.foreign.id, address, "Foreign User", Role.CUSTOMER_USER, PASSWORD)
    tokens = await login(world.client, address)
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def mine(world: World, headers: dict[str, str], **query: str) -> dict[str, Any]:
    response = await world.client.get("/api/v1/notifications", params=query, headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def announce(world: World, **body: Any) -> ClientResponse:
    return await world.client.post("/api/v1/notifications", json={
        "title": "Maintenance", "body": "The portal pauses tonight.", **body},
        headers=world.actors[Role.STAFF].headers)


async def test_a_release_tells_the_licensed_users_and_no_one_else(world: World) -> None:
    await world.add_document(DocumentKind.LICENSE, world.own)
    foreign = await a_foreign_user(world)
    release = await world.publish("9.1", {"fix.bin": b"x"}, manifest=MANIFEST)
    user = world.actors[Role.CUSTOMER_USER].headers
    got = await mine(world, user)
    [told] = [n for n in got["items"] if n["kind"] == "security.published"]
    assert told["title"] == "Security fix: Critical fix" and told["read"] is False
    assert told["link"] == f"/products/{world.product.id}#release-{release.id}"
    assert got["unread_count"] >= 1
    assert all(n["kind"] != "security.published" for n in (await mine(world, foreign))["items"])


async def test_reading_marking_and_deleting_own_notifications(world: World) -> None:
    headers = world.actors[Role.CUSTOMER_USER].headers
    for n in range(3):
        assert (await announce(world, title=f"Note {n}", cabinet_id=world.own.id)).status == 201
    first = await mine(world, headers)
    assert [n["title"] for n in first["items"][:3]] == ["Note 2", "Note 1", "Note 0"]
    assert first["unread_count"] == 3
    newest = first["items"][0]
    read = await world.client.patch(f"/api/v1/notifications/{newest['id']}",
                                    json={"read": True}, headers=headers)
    assert read.status == 200 and (await read.json())["read"] is True
    unread = await mine(world, headers, unread="true")
    assert unread["unread_count"] == 2 and newest["id"] not in [n["id"] for n in unread["items"]]
    again = await world.client.patch(f"/api/v1/notifications/{newest['id']}",
                                     json={"read": False}, headers=headers)
    assert (await again.json())["read"] is False
    everything = await world.client.post("/api/v1/notifications/read-all", headers=headers)
    assert (await everything.json()) == {"marked": 3}
    assert (await mine(world, headers))["unread_count"] == 0
    gone = await world.client.delete(f"/api/v1/notifications/{newest['id']}", headers=headers)
    assert gone.status == 204
    assert newest["id"] not in [n["id"] for n in (await mine(world, headers))["items"]]
    # The admin of the same cabinet got the same announcement, as a notification of their own.
    admin = world.actors[Role.CUSTOMER_ADMIN].headers
    other = (await mine(world, admin))["items"][0]
    for method, body in (("PATCH", {"read": True}), ("DELETE", None)):
        refused = await world.client.request(method, f"/api/v1/notifications/{other['id']}",
                                             json=body, headers=headers)
        assert refused.status == 404 and refused.content_type == "application/problem+json"


async def test_announcements_reach_whom_they_name(world: World) -> None:
    foreign = await a_foreign_user(world)
    user = world.actors[Role.CUSTOMER_USER].headers
    assert (await announce(world, title="To own", cabinet_id=world.own.id)).status == 201
    await world.add_document(DocumentKind.LICENSE, world.own)
    sent = await announce(world, title="To licensees", product_id=world.product.id)
    assert sent.status == 201 and (await sent.json())["recipients"] >= 2
    everyone = await announce(world, title="To all")
    assert (await everyone.json())["recipients"] >= 5
    assert [n["title"] for n in (await mine(world, user))["items"][:3]] == [
        "To all", "To licensees", "To own"]
    assert [n["title"] for n in (await mine(world, foreign))["items"]] == ["To all"]
    refused = await world.client.post("/api/v1/notifications", json={
        "title": "Hi", "body": "x"}, headers=world.actors[Role.CUSTOMER_ADMIN].headers)
    assert refused.status == 403
    for bad in ({"link": "javascript:alert(1)"}, {"title": " "},
                {"cabinet_id": world.own.id, "product_id": world.product.id},
                {"cabinet_id": "nope"}):
        answer = await announce(world, **bad)
        assert answer.status in (404, 422) and \
            answer.content_type == "application/problem+json", bad


async def test_settings_choose_what_arrives(world: World) -> None:
    headers = world.actors[Role.CUSTOMER_USER].headers
    settings = await (await world.client.get("/api/v1/me/notification-settings",
                                             headers=headers)).json()
    by_kind = {item["kind"]: item for item in settings["items"]}
    assert by_kind["announcement"] == {"kind": "announcement", "label": "Announcements",
                                       "in_app": True, "email": True}
    assert set(by_kind) == {kind.value for kind in NotificationKind}
    changed = await world.client.put("/api/v1/me/notification-settings", json={"items": [
        {"kind": "announcement", "in_app": False, "email": True}]}, headers=headers)
    assert {i["kind"]: i["in_app"] for i in (await changed.json())["items"]}[
        "announcement"] is False
    await announce(world, title="Muted", cabinet_id=world.own.id)
    assert "Muted" not in [n["title"] for n in (await mine(world, headers))["items"]]
    admin = world.actors[Role.CUSTOMER_ADMIN].headers
    assert "Muted" in [n["title"] for n in (await mine(world, admin))["items"]]
    bad = await world.client.put("/api/v1/me/notification-settings", json={"items": [
        {"kind": "nonsense", "in_app": False, "email": True}]}, headers=headers)
    assert bad.status == 422


@dataclass
class Event:
    id: str | None
    event: str | None
    data: str


async def read_events(response: ClientResponse, count: int, seconds: float = 5) -> list[Event]:
    """The next `count` events of a stream (comments skipped)."""
    found: list[Event] = []
    fields: dict[str, str] = {}

    async def collect() -> None:
        while len(found) < count:
            raw = await response.content.readline()
            if not raw:
                raise AssertionError(f"the stream ended after {len(found)} events")
            line = raw.decode().rstrip("\r\n")
            if line == "":
                if fields:
                    found.append(Event(fields.get("id"), fields.get("event"),
                                       fields.get("data", "")))
                    fields.clear()
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")

    await asyncio.wait_for(collect(), seconds)
    return found


async def test_the_stream_delivers_live_and_replays_what_was_missed(world: World) -> None:
    headers = world.actors[Role.CUSTOMER_USER].headers
    stream = await world.client.get("/api/v1/notifications/stream", headers=headers)
    assert stream.status == 200 and stream.content_type == "text/event-stream"
    [ready] = await read_events(stream, 1)
    assert ready.event == "ready"
    start = int(ready.id or 0)
    await announce(world, title="Live one", cabinet_id=world.own.id)
    [live] = await read_events(stream, 1)
    assert live.event == "announcement" and int(live.id or 0) == start + 1
    assert json.loads(live.data)["title"] == "Live one"
    stream.close()

    # Three more while disconnected; a reconnect from the last id seen gets exactly those.
    for n in range(3):
        await announce(world, title=f"Missed {n}", cabinet_id=world.own.id)
    again = await world.client.get("/api/v1/notifications/stream",
                                   headers={**headers, "Last-Event-ID": live.id or ""})
    ready, *missed = await read_events(again, 4)
    assert [int(e.id or 0) for e in missed] == [start + 2, start + 3, start + 4]
    assert [json.loads(e.data)["title"] for e in missed] == ["Missed 0", "Missed 1",
                                                             "Missed 2"]
    await announce(world, title="After", cabinet_id=world.own.id)
    [after] = await read_events(again, 1)
    assert int(after.id or 0) == start + 5
    again.close()


async def test_a_stream_carries_only_its_users_notifications(world: World) -> None:
    foreign = await a_foreign_user(world)
    stream = await world.client.get("/api/v1/notifications/stream", headers=foreign)
    await read_events(stream, 1)  # ready
    await announce(world, title="Not for you", cabinet_id=world.own.id)
    await announce(world, title="For you", cabinet_id=world.foreign.id)
    [first] = await read_events(stream, 1)
    assert json.loads(first.data)["title"] == "For you"
    stream.close()
    bad = await world.client.get("/api/v1/notifications/stream",
                                 headers={**foreign, "Last-Event-ID": "yesterday"})
    assert bad.status == 400


async def test_streams_end_when_the_portal_stops(world: World) -> None:
    headers = world.actors[Role.CUSTOMER_USER].headers
    stream = await world.client.get("/api/v1/notifications/stream", headers=headers)
    await read_events(stream, 1)
    hub = world.client.app[HUB]
    assert hub.open_streams == 1
    hub.close_all()
    assert await asyncio.wait_for(stream.content.read(), 5) == b""  # the server ended it
    assert hub.open_streams == 0


async def test_405_lists_the_methods_of_the_path_asked(world: World) -> None:
    headers = world.actors[Role.CUSTOMER_USER].headers
    for path, allowed in (("/api/v1/notifications/read-all", "POST"),
                          ("/api/v1/notifications/stream", "GET"),
                          ("/api/v1/notifications/some-id", "DELETE,PATCH")):
        answer = await world.client.put(path, headers=headers, json={})
        assert answer.status == 405 and answer.headers["Allow"] == allowed, path


async def test_an_announcement_to_many_arrives_at_once_and_is_there_to_mark(
        world: World) -> None:
    # More users than one transaction writes at once: the announcement is held as one batch,
    # pushed at once, and written into everyone's notifications and e-mail just after.
    extra = INLINE_RECIPIENTS + 10
    now, ids = datetime.now(UTC), Uuid7Ids()
    async with world.client.app[SERVICES].storage.unit_of_work() as uow:
        for n in range(extra):
            address = email(f"crowd{n}")
            await uow.users.add(User(id=ids.new_id(), email=address, email_key=address.lower(),
                                     name=f"Crowd {n}", role=Role.CUSTOMER_USER,
                                     cabinet_id=world.own.id, active=True, password_hash=None,
                                     created_at=now, updated_at=now))
        await uow.commit()
    headers = world.actors[Role.CUSTOMER_USER].headers
    stream = await world.client.get("/api/v1/notifications/stream", headers=headers)
    [ready] = await read_events(stream, 1)
    title = f"To the crowd {ids.new_id()}"

    response = await announce(world, title=title, cabinet_id=world.own.id)

    assert response.status == 201, await response.text()
    told = (await response.json())["recipients"]
    assert told > extra
    [live] = await read_events(stream, 1)
    pushed = json.loads(live.data)
    assert (pushed["title"], int(live.id or 0)) == (title, int(ready.id or 0) + 1)
    # Marked read at once, by the id the stream gave, whether or not the batch was written.
    marked = await world.client.patch(f"/api/v1/notifications/{pushed['id']}",
                                      json={"read": True}, headers=headers)
    assert marked.status == 200, await marked.text()
    assert (await marked.json())["read"] is True
    listed = await mine(world, headers)
    assert [(n["id"], n["seq"], n["read"]) for n in listed["items"][:1]] == [
        (pushed["id"], int(live.id or 0), True)]
    async with world.client.app[SERVICES].storage.unit_of_work() as uow:
        assert await uow.notifications.held(10) == []
        queued = await uow.outbox.list_recent(10 * extra, recipient="crowd")
    assert sum(m.subject == title for m in queued) == extra  # e-mailed, each of them
    stream.close()


async def test_a_client_that_stops_reading_is_dropped_and_never_slows_the_others(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel's own limit (TCP_USER_TIMEOUT, from the send timeout) far off: the hub's
    # sweep is what must cut the stream whose client stopped reading.
    monkeypatch.setattr(notifications_api, "SEND_TIMEOUT_SECONDS", 600)
    actor = world.actors[Role.CUSTOMER_USER]
    hub = world.client.app[HUB]
    monkeypatch.setattr(hub, "_stall_seconds", 0.5)
    reader = await world.client.get("/api/v1/notifications/stream", headers=actor.headers)
    [ready] = await read_events(reader, 1)
    # The other client: a raw socket with a small receive buffer that never reads.
    server = world.client.server
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((server.host, server.port))
    _, writer = await asyncio.open_connection(sock=sock)
    writer.write(f"GET /api/v1/notifications/stream HTTP/1.1\r\nHost: {server.host}\r\n"
                 f"Authorization: {actor.headers['Authorization']}\r\n\r\n".encode())
    await writer.drain()
    async with asyncio.timeout(5):
        while hub.open_streams < 2:
            await asyncio.sleep(0.01)

    # Far more than the stalled connection's buffers and queue hold, published as the bus
    # would: the reader gets every one, in order, while the other is dropped.
    events = world.client.app[SERVICES].events
    first, count, body = int(ready.id or 0) + 1, 2000, "x" * 4000
    reading = asyncio.create_task(read_events(reader, count, seconds=30))
    for position in range(first, first + count):
        await events.publish(NotificationsCreated(batch=Batch(
            position, f"b{position}", Message(NotificationKind.ANNOUNCEMENT, f"N{position}",
                                              body), datetime.now(UTC), (actor.user_id,),
            ()), held=False))
        if position % 20 == 0:
            await asyncio.sleep(0.001)  # as from a bus: a few at a time
    got = await reading
    assert [int(e.id or 0) for e in got] == list(range(first, first + count))
    # The stalled stream's write waits on its client until the sweep cuts it; the reader's
    # stream stays.
    async with asyncio.timeout(10):
        while hub.open_streams > 1:
            await asyncio.sleep(0.1)
            hub.cut_stalled(asyncio.get_running_loop().time())  # the portal's sweep, sooner
    assert hub.open_streams == 1
    # The reader's stream is not waiting on a write: no sweep cuts it, however late.
    assert hub.cut_stalled(asyncio.get_running_loop().time() + 3600) == 0
    writer.close()
    reader.close()


async def test_an_idle_stream_gets_a_heartbeat(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = world.client.app[HUB]
    headers = world.actors[Role.CUSTOMER_USER].headers
    stream = await world.client.get("/api/v1/notifications/stream", headers=headers)
    assert stream.headers["Content-Type"] == "text/event-stream"
    assert stream.headers["Cache-Control"] == "no-store"
    [ready] = await read_events(stream, 1)
    loop = asyncio.get_running_loop()
    assert hub.beat(loop.time()) == 0  # it just wrote: not idle yet
    monkeypatch.setattr(hub, "_heartbeat_seconds", 0.2)
    await asyncio.sleep(0.3)
    await hub.sweep()  # as the portal does every few seconds
    line = await asyncio.wait_for(stream.content.readline(), 5)
    assert line == b": ping\r\n"
    assert await asyncio.wait_for(stream.content.readline(), 5) == b"\r\n"
    await announce(world, title="After the beat", cabinet_id=world.own.id)
    [event] = await read_events(stream, 1)
    assert json.loads(event.data)["title"] == "After the beat"
    assert int(event.id or 0) == int(ready.id or 0) + 1
    stream.close()
