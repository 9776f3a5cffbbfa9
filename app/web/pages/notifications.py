"""Portal pages for notifications: the list, settings, staff announcements and the e-mail
log."""

from __future__ import annotations

from collections import Counter

from aiohttp import web

from app.domain.errors import DomainError
from app.domain.notifications import NotificationKind, Preference
from app.domain.paging import PageRequest
from app.domain.users import Principal
from app.services.notifications import Audience
from app.web.keys import SERVICES
from app.web.pages.common import PAGE_SIZE, form_of, signed_in
from app.web.pages.render import render, see_other

routes = web.RouteTableDef()


@routes.get("/notifications")
@signed_in
async def notification_list(request: web.Request, me: Principal) -> web.StreamResponse:
    unread_only = request.query.get("unread") == "1"
    notices = []
    kind = None
    if wanted := request.query.get("kind"):
        if wanted in NotificationKind._value2member_map_:
            kind = NotificationKind(wanted)
        else:
            notices.append(f"“{wanted}” is not a kind of notification; showing every kind.")
    cursor = request.query.get("cursor")
    try:
        page_request = PageRequest.from_cursor(PAGE_SIZE, cursor)
    except DomainError:
        notices.append("That page link is out of date; showing the newest.")
        page_request, cursor = PageRequest(PAGE_SIZE), None
    page, unread = await request.app[SERVICES].notifications.list_own(
        me, page_request, unread_only, kind)
    kept = {"unread": "1" if unread_only else None, "kind": kind.value if kind else None}
    return render(request, "notifications.html", {
        "items": page.items, "next_cursor": page.next_cursor, "unread": unread,
        "unread_only": unread_only, "kind": kind, "total": page.total, "paged": bool(cursor),
        "notices": notices, "kinds": list(NotificationKind),
        "kept": {k: v for k, v in kept.items() if v}})


@routes.post("/notifications/read-all")
@signed_in
async def notification_read_all(request: web.Request, me: Principal) -> web.StreamResponse:
    await request.app[SERVICES].notifications.read_all(me)
    return see_other("/notifications")


@routes.post(r"/notifications/{id}/{action:read|unread|delete}")
@signed_in
async def notification_change(request: web.Request, me: Principal) -> web.StreamResponse:
    notifications = request.app[SERVICES].notifications
    notification_id, action = request.match_info["id"], request.match_info["action"]
    if action == "delete":
        await notifications.delete(me, notification_id)
    else:
        await notifications.mark(me, notification_id, action == "read")
    return see_other("/notifications")


@routes.get("/notifications/open/{id}")
@signed_in
async def notification_open(request: web.Request, me: Principal) -> web.StreamResponse:
    """Follow a notification's link, marking it read on the way."""
    found = await request.app[SERVICES].notifications.mark(me, request.match_info["id"], True)
    target = found.link or "/notifications"
    return see_other(target if target.startswith(("/", "https://")) else "/notifications")


@routes.get("/notifications/settings")
@signed_in
async def notification_settings(request: web.Request, me: Principal) -> web.StreamResponse:
    chosen = await request.app[SERVICES].notifications.preferences(me)
    return render(request, "notification_settings.html", {
        "chosen": chosen, "saved": request.query.get("saved")})


@routes.post("/notifications/settings")
@signed_in
async def notification_settings_save(request: web.Request,
                                     me: Principal) -> web.StreamResponse:
    form = await form_of(request)
    await request.app[SERVICES].notifications.set_preferences(me, {
        kind: Preference(in_app=form.get(f"{kind.value}:in_app") == "on",
                         email=form.get(f"{kind.value}:email") == "on")
        for kind in NotificationKind})
    return see_other("/notifications/settings?saved=1")


@routes.get("/notifications/mail")
@signed_in
async def mail_log(request: web.Request, me: Principal) -> web.StreamResponse:
    to = request.query.get("to", "")
    messages = await request.app[SERVICES].notifications.recent_mail(me, to)
    return render(request, "mail_log.html", {
        "messages": messages, "counts": Counter(m.status.value for m in messages), "to": to})


async def _announce_page(request: web.Request, me: Principal, *, status: int = 200,
                         **extra: object) -> web.Response:
    services = request.app[SERVICES]
    products, cabinets = await services.notifications.audiences(me)
    history = await services.notifications.announced(
        me, PageRequest.from_cursor(PAGE_SIZE, request.query.get("cursor")))
    return render(request, "announce.html", {
        "products": products, "cabinets": cabinets, "form": {}, "history": history.items,
        "history_next": history.next_cursor, **extra}, status=status)


@routes.get("/notifications/announce")
@signed_in
async def announce_form(request: web.Request, me: Principal) -> web.StreamResponse:
    return await _announce_page(request, me, sent=request.query.get("sent"))


@routes.post("/notifications/announce")
@signed_in
async def announce_send(request: web.Request, me: Principal) -> web.StreamResponse:
    """The form first shows what will be sent and to how many (step "preview"); "Send"
    on that preview sends it."""
    form = await form_of(request)
    audience = form.get("audience", "all")
    target = form.get("target_" + audience, "") if audience in ("cabinet", "product") else ""
    chosen = Audience(cabinet_id=target if audience == "cabinet" else None,
                      product_id=target if audience == "product" else None)
    notifications = request.app[SERVICES].notifications
    try:
        if form.get("step") != "send":
            message, reach = await notifications.preview(
                me, form.get("title", ""), form.get("body", ""), form.get("link") or None,
                chosen)
            return await _announce_page(request, me, form=form, preview=message, reach=reach)
        count = await notifications.announce(
            me, form.get("title", ""), form.get("body", ""), form.get("link") or None,
            chosen)
    except DomainError as exc:
        if exc.status == 403:
            raise
        return await _announce_page(request, me, status=exc.status, error=exc.detail,
                                    form=form)
    return see_other(f"/notifications/announce?sent={count}")
