"""Portal pages for support requests: the list (the staff's queue), a new request, and the
request as a conversation that stays live; staff work requests of the portal's own helpdesk
here."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from app.domain import access
from app.domain.errors import DomainError
from app.domain.licensing import DocumentKind, DocumentStatus
from app.domain.paging import MAX_LIMIT, PageRequest
from app.domain.support import IssueChanges, IssueFilter, IssueStatus, Priority
from app.domain.users import Principal
from app.services.licensing import DocumentQuery
from app.services.support import IssueView, RequestDraft
from app.web.keys import SERVICES, SETTINGS
from app.web.pages import session
from app.web.pages.common import PAGE_SIZE, form_of, signed_in
from app.web.pages.markup import moment
from app.web.pages.render import render, see_other
from app.web.uploads import chunks, file_part

routes = web.RouteTableDef()
# The queues a staff member switches between; each is a set of list filters.
QUEUES = {"mine": "Assigned to me", "unassigned": "Unassigned", "open": "All open", "all": "All"}


def status_badge(status: IssueStatus) -> str:
    return {IssueStatus.NEW: "pending", IssueStatus.OPEN: "pending",
            IssueStatus.WAITING: "warn", IssueStatus.ON_HOLD: "kind",
            IssueStatus.RESOLVED: "on", IssueStatus.CLOSED: "kind"}[status]


def status_label(status: IssueStatus, staff: bool) -> str:
    """The customer reads "Waiting for you" where staff read who is awaited."""
    return "Waiting for customer" if staff and status is IssueStatus.WAITING else status.label


def span(delta: timedelta) -> str:
    """"2 h 05 min", "3 days 4 h": how long something took or is left."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''} {hours} h"
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


HELPERS = {"status_badge": status_badge, "status_label": status_label, "span": span,
           "when": moment,
           "statuses": list(IssueStatus), "priorities": list(Priority), "queues": QUEUES}


def _filters(request: web.Request, me: Principal) -> tuple[IssueFilter, dict[str, str]]:
    query = request.query
    shown = {k: v for k, v in query.items() if k != "cursor" and v}
    status = query.get("status", "")
    queue = query.get("queue", "")
    return IssueFilter(
        status=IssueStatus(status) if status in IssueStatus._value2member_map_ else None,
        product_id=query.get("product") or None, text=(query.get("q") or "").strip() or None,
        active=queue in ("mine", "unassigned", "open"),
        assignee_id=me.user_id if queue == "mine" else None,
        unassigned=queue == "unassigned"), shown


@routes.get("/support")
@signed_in
async def issue_list(request: web.Request, me: Principal) -> web.StreamResponse:
    services = request.app[SERVICES]
    filters, shown = _filters(request, me)
    page = await services.support.list_visible(
        me, filters, PageRequest.from_cursor(PAGE_SIZE, request.query.get("cursor")),
        request.query.get("cabinet") or None)
    products = await services.catalog.list_visible(me, PageRequest(MAX_LIMIT))
    cabinets = await services.cabinets.list_visible(me, PageRequest(MAX_LIMIT))
    failures = await services.support.failures(me, 20) \
        if services.helpdesk.external and access.may_work_requests(me) else []
    return render(request, "support_list.html", {
        "rows": page.items, "next_cursor": page.next_cursor, "filters": shown,
        "products": products.items,
        # A picker only while it fits one page; beyond, organisation pages link here.
        "cabinets": cabinets.items if cabinets.next_cursor is None
        and len(cabinets.items) > 1 else [],
        "failures": failures, "sees_below": not access.support_scope(me).exact, **HELPERS})


async def _new_form(request: web.Request, me: Principal, *, status: int = 200,
                    **extra: Any) -> web.Response:
    services = request.app[SERVICES]
    valid = await services.licensing.list_visible(
        me, DocumentKind.CERTIFICATE, DocumentQuery(status=DocumentStatus.ACTIVE),
        PageRequest(MAX_LIMIT))
    licenses = await services.licensing.list_visible(
        me, DocumentKind.LICENSE, DocumentQuery(status=DocumentStatus.ACTIVE),
        PageRequest(MAX_LIMIT))
    products = {v.product.id: v.product for v in valid.items}
    return render(request, "support_new.html", {
        "certificates": valid.items, "products": sorted(products.values(),
                                                        key=lambda p: p.name),
        "licenses": [v for v in licenses.items if v.product.id in products],
        "contact": request.app[SETTINGS].support.renewal_contact,
        "policy": services.conversation.policy, "form": {}, **HELPERS, **extra},
        status=status)


@routes.get("/support/new")
@signed_in
async def new_issue(request: web.Request, me: Principal) -> web.StreamResponse:
    access.require_may_open_request(me)
    return await _new_form(request, me)


@routes.post("/support/new")
@signed_in
async def create_issue(request: web.Request, me: Principal) -> web.StreamResponse:
    form = await form_of(request)
    priority = form.get("priority", "normal")
    try:
        issue = await request.app[SERVICES].support.open(me, RequestDraft(
            subject=form.get("subject", ""), description=form.get("description", ""),
            product_id=form.get("product_id", ""),
            priority=Priority(priority) if priority in Priority._value2member_map_
            else Priority.NORMAL, certificate_id=form.get("certificate_id") or None,
            license_id=form.get("license_id") or None))
    except DomainError as exc:
        if exc.status == 403:
            raise
        return await _new_form(request, me, status=exc.status, error=exc.detail,
                               field=exc.field, form=form)
    return see_other(f"/support/{issue.id}?opened=1")


async def _issue_page(request: web.Request, me: Principal, *, status: int = 200,
                      template: str = "support_issue.html", **extra: Any) -> web.Response:
    services = request.app[SERVICES]
    view: IssueView = await services.support.get(me, request.match_info["id"])
    return render(request, template, {
        "view": view, "issue": view.issue, "external": services.helpdesk.external,
        "policy": services.conversation.policy,
        "contact": request.app[SETTINGS].support.renewal_contact,
        "notice": request.query.get("notice", ""), **HELPERS, **extra}, status=status)


@routes.get("/support/{id}")
@signed_in
async def issue_page(request: web.Request, me: Principal) -> web.StreamResponse:
    return await _issue_page(request, me, opened=bool(request.query.get("opened")))


@routes.get("/support/{id}/live")
@signed_in
async def issue_live(request: web.Request, me: Principal) -> web.StreamResponse:
    """The parts of the request page that change, for the page to swap in place."""
    return await _issue_page(request, me, template="support_live.html")


@routes.post("/support/{id}/comments")
@signed_in
async def add_comment(request: web.Request, me: Principal) -> web.StreamResponse:
    form = await form_of(request)
    try:
        made = await request.app[SERVICES].conversation.comment(
            me, request.match_info["id"], form.get("body", ""),
            public=form.get("internal") != "on")
    except DomainError as exc:
        if exc.status == 404:
            raise
        return await _issue_page(request, me, status=exc.status, error=exc.detail,
                                 draft=form.get("body", ""))
    return see_other(f"/support/{request.match_info['id']}#c-{made.id}")


@routes.post("/support/{id}/update")
@signed_in
async def update_issue(request: web.Request, me: Principal) -> web.StreamResponse:
    form = await form_of(request)
    status, priority = form.get("status", ""), form.get("priority", "")
    assign = form.get("assign", "")
    changes = IssueChanges(
        status=IssueStatus(status) if status in IssueStatus._value2member_map_ else None,
        priority=Priority(priority) if priority in Priority._value2member_map_ else None,
        assignee_id=me.user_id if assign == "me" else None, unassign=assign == "nobody")
    try:
        await request.app[SERVICES].support.update(me, request.match_info["id"], changes)
    except DomainError as exc:
        if exc.status == 404:
            raise
        return await _issue_page(request, me, status=exc.status, error=exc.detail)
    return see_other(f"/support/{request.match_info['id']}?notice=saved")


@routes.post("/support/{id}/files")
@signed_in
async def add_file(request: web.Request, me: Principal) -> web.StreamResponse:
    """A file from the page's form, streamed into the store as it arrives: its CSRF token
    comes first in the form (the middlewares leave this body unread)."""
    conversation = request.app[SERVICES].conversation
    try:
        part = await file_part(request, first=(
            session.CSRF_FIELD, lambda token: session.check_csrf(request, token)))
        await conversation.attach(me, request.match_info["id"], part.filename or "",
                                  chunks(request, part))
    except DomainError as exc:
        if exc.status in (403, 404) or isinstance(exc, session.CsrfFailed):
            raise
        return await _issue_page(request, me, status=exc.status, error=exc.detail)
    return see_other(f"/support/{request.match_info['id']}?notice=attached#files")
