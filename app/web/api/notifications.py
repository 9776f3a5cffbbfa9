"""Notifications: the caller's own, read marks, settings, staff announcements, and the live
stream (server-sent events)."""

from __future__ import annotations

import asyncio
import functools
import socket
from datetime import datetime

from aiohttp import web

from app.domain.errors import BadRequest, TryAgain
from app.domain.notifications import Notification, NotificationKind, Preference
from app.domain.users import Principal
from app.services.notifications import Audience, NotificationService
from app.web.api.common import json_out, page_request, principal, services
from app.web.keys import DRAINING, HUB
from app.web.openapi import ApiRoutes
from app.web.schemas.notifications import (
    AnnouncementIn,
    AnnouncementOut,
    NotificationOut,
    NotificationPage,
    NotificationPatch,
    NotificationQuery,
    NotificationSettingsIn,
    NotificationSettingsOut,
    ReadAllOut,
    StreamQuery,
)
from app.web.stream import Heartbeat, Listener, Resync

api = ApiRoutes("notifications")
SEND_TIMEOUT_SECONDS = 30
RETRY_MS = 3000
REPLAY_BATCH = 200


@api.operation("GET", "/api/v1/notifications", summary="My notifications",
               query=NotificationQuery, response=NotificationPage,
               description="Newest first, with the number of unread ones.")
async def list_notifications(request: web.Request, query: NotificationQuery) -> web.Response:
    page, unread = await services(request).notifications.list_own(
        principal(request), page_request(query), unread_only=query.unread)
    return json_out(NotificationPage(items=[NotificationOut.of(n) for n in page.items],
                                     next_cursor=page.next_cursor, unread_count=unread))


@api.operation("POST", "/api/v1/notifications", summary="Send an announcement",
               body=AnnouncementIn, response=AnnouncementOut, status=201, errors=(403,),
               description="Staff. To every user, to one cabinet's users (`cabinet_id`), or to "
                           "the users of cabinets licensed for a product (`product_id`).")
async def announce(request: web.Request, body: AnnouncementIn) -> web.Response:
    count = await services(request).notifications.announce(
        principal(request), body.title, body.body, body.link,
        Audience(cabinet_id=body.cabinet_id, product_id=body.product_id))
    return json_out(AnnouncementOut(recipients=count), status=201)


@api.operation("PATCH", "/api/v1/notifications/{id}", summary="Mark read or unread",
               body=NotificationPatch, response=NotificationOut)
async def mark(request: web.Request, body: NotificationPatch) -> web.Response:
    found = await services(request).notifications.mark(principal(request),
                                                       request.match_info["id"], body.read)
    return json_out(NotificationOut.of(found))


@api.operation("DELETE", "/api/v1/notifications/{id}", summary="Delete one of mine",
               status=204)
async def delete(request: web.Request) -> web.Response:
    await services(request).notifications.delete(principal(request), request.match_info["id"])
    return web.Response(status=204)


@api.operation("POST", "/api/v1/notifications/read-all", summary="Mark all mine read",
               response=ReadAllOut)
async def read_all(request: web.Request) -> web.Response:
    count = await services(request).notifications.read_all(principal(request))
    return json_out(ReadAllOut(marked=count))


@api.operation("GET", "/api/v1/me/notification-settings", summary="My notification settings",
               response=NotificationSettingsOut,
               description="For each kind: in the portal, by e-mail, on or off.")
async def get_settings(request: web.Request) -> web.Response:
    chosen = await services(request).notifications.preferences(principal(request))
    return json_out(NotificationSettingsOut.of(chosen))


@api.operation("PUT", "/api/v1/me/notification-settings",
               summary="Change my notification settings", body=NotificationSettingsIn,
               response=NotificationSettingsOut,
               description="The kinds given change; the others stay as they are.")
async def put_settings(request: web.Request, body: NotificationSettingsIn) -> web.Response:
    chosen = await services(request).notifications.set_preferences(principal(request), {
        item.kind: Preference(item.in_app, item.email)
        for item in body.items})
    return json_out(NotificationSettingsOut.of(chosen))


@api.operation("GET", "/api/v1/notifications/stream", summary="Live notifications (SSE)",
               query=StreamQuery, media=("text/event-stream",),
               extra_responses={200: ("`text/event-stream`: each notification as an event "
                                      "with `id:` (its seq) and `event:` (its kind), JSON "
                                      "data; a comment at least every 15 s.", None)},
               description="Bearer token or the portal's session cookie. Send "
                           "`Last-Event-ID` (or `lastEventId`) on reconnect to get everything "
                           "after it, in order; without it, only what comes from now on.")
async def stream(request: web.Request, query: StreamQuery) -> web.StreamResponse:
    if request.app[DRAINING].is_set():
        # This process is stopping: a proxy passes the request on to another instance.
        raise TryAgain("This server is restarting; connect again.")
    actor = principal(request)
    notifications = services(request).notifications
    last = _last_event_id(request, query)
    hub = request.app[HUB]
    # Attached before storage is read: whatever is created meanwhile is queued, not lost.
    listener = hub.attach(actor.user_id or "")
    response: web.StreamResponse | None = None
    try:
        if last is None:
            last = await notifications.position()
        response = await _open(request, listener)
        await _write(response, listener,
                     f"id: {last}\r\nevent: ready\r\ndata: \r\nretry: {RETRY_MS}\r\n\r\n")
        last = await _replay(response, listener, notifications, actor, last)
        while (item := await listener.next()) is not None:
            if isinstance(item, Resync):
                last = await _replay(response, listener, notifications, actor, last)
            elif isinstance(item, Heartbeat):
                await _write(response, listener, ": ping\r\n\r\n")
            elif item.seq > last:  # not replayed already
                await _send(response, listener, item)
                last = item.seq
    except ConnectionError:
        if response is None:
            raise
        # The client went away: nothing to answer, nothing to log.
    finally:
        hub.detach(listener)
    if listener.dropped and listener.abort is not None:
        # It fell behind or stopped reading: no orderly end, which would wait on it too.
        listener.abort()
    return response


async def _open(request: web.Request, listener: Listener) -> web.StreamResponse:
    """The event stream's response, its headers sent. A plain response, not aiohttp-sse's:
    that one runs a task and a timer per stream for its heartbeat, where the hub's sweep
    does every stream's at once (NotificationHub.beat)."""
    # No length: aiohttp sends the body chunked on HTTP/1.1, and to the close on HTTP/1.0.
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store",
        "X-Accel-Buffering": "no"})
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6) \
            and hasattr(socket, "TCP_USER_TIMEOUT"):
        # The kernel ends the connection when what was sent stays unacknowledged this long.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT,
                        int(SEND_TIMEOUT_SECONDS * 1000))
    await response.prepare(request)
    if transport is not None:  # how the hub cuts it if the client stops reading
        listener.abort = transport.abort
    return response


async def _replay(response: web.StreamResponse, listener: Listener,
                  notifications: NotificationService, actor: Principal, last: int) -> int:
    while True:
        missed = await notifications.after(actor, last, REPLAY_BATCH)
        for notification in missed:
            await _send(response, listener, notification)
            last = notification.seq
        if len(missed) < REPLAY_BATCH:
            return last


async def _send(response: web.StreamResponse, listener: Listener,
                notification: Notification) -> None:
    """One event. Its JSON is made once for every recipient of one message: an
    announcement is written to thousands of streams at once."""
    before, after = _json_around_id(notification.seq, notification.kind, notification.title,
                                    notification.body, notification.link,
                                    notification.created_at, notification.read_at)
    await _write(response, listener,
                 f"id: {notification.seq}\r\nevent: {notification.kind.value}\r\n"
                 f"data: {before}{notification.id}{after}\r\n\r\n")


async def _write(response: web.StreamResponse, listener: Listener, text: str) -> None:
    # No timeout of its own: with thousands of streams, a timer for every write cost as much
    # as the write. A write only waits when the client stopped reading; the hub's sweep then
    # cuts the connection (NotificationHub.cut_stalled), and this write fails with it.
    loop = asyncio.get_running_loop()
    listener.writing_since = loop.time()
    try:
        await response.write(text.encode())
    finally:
        listener.writing_since = None
        listener.written = loop.time()


@functools.lru_cache(maxsize=64)
def _json_around_id(seq: int, kind: NotificationKind, title: str, body: str, link: str | None,
                    created_at: datetime, read_at: datetime | None) -> tuple[str, str]:
    """A notification's JSON before and after its id, the same for every recipient of one
    message: made once, not once a stream. The id comes first and is a UUID."""
    text = NotificationOut(id=_ID_MARK, seq=seq, kind=kind, title=title, body=body,
                           link=link, created_at=created_at, read=read_at is not None,
                           read_at=read_at).model_dump_json()
    before, after = text.split(_ID_MARK, 1)
    return before, after


_ID_MARK = "~id~"


def _last_event_id(request: web.Request, query: StreamQuery) -> int | None:
    raw = request.headers.get("Last-Event-ID")
    if raw is None:
        return query.last_event_id
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise BadRequest("Last-Event-ID is the id of an event this stream sent.",
                         field="Last-Event-ID")
    return int(raw)

