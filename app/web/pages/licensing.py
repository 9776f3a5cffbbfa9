"""Portal pages for licenses and support certificates, and the download history."""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web

from app.domain.errors import DomainError
from app.domain.licensing import DocumentKind, DocumentStatus
from app.domain.paging import MAX_LIMIT, PageRequest
from app.domain.releases import MAX_ARCHIVE_FILES, ReleaseKind
from app.domain.users import Principal
from app.services.licensing import DocumentQuery, DocumentView
from app.web.keys import SERVICES
from app.web.pages.common import PAGE_SIZE, form_of, signed_in
from app.web.pages.render import render, see_other

routes = web.RouteTableDef()
KINDS = {"licenses": DocumentKind.LICENSE, "certificates": DocumentKind.CERTIFICATE}
EXPIRING_DAYS = 30


def badge(view: DocumentView) -> tuple[str, str]:
    """(css class, words) of a document's state, as a customer reads it."""
    if view.status is DocumentStatus.REVOKED:
        return "off", "Revoked"
    if view.status is DocumentStatus.EXPIRED:
        return "off", "Expired"
    if view.status is DocumentStatus.PENDING:
        return "pending", f"Valid from {view.document.valid_from.isoformat()}"
    days = view.days_left
    if days is None:
        return "on", "Valid, perpetual"
    if days <= EXPIRING_DAYS:
        return "warn", "Expires today" if days == 0 else \
            f"Expires in {days} day{'s' if days != 1 else ''}"
    return "on", "Valid"


def _kind(request: web.Request) -> tuple[str, DocumentKind]:
    plural = request.match_info["plural"]
    if plural not in KINDS:
        raise web.HTTPNotFound()
    return plural, KINDS[plural]


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


@routes.get(r"/{plural:licenses|certificates}")
@signed_in
async def document_list(request: web.Request, me: Principal) -> web.StreamResponse:
    plural, kind = _kind(request)
    services = request.app[SERVICES]
    status = request.query.get("status", "")
    query = DocumentQuery(
        product=request.query.get("product") or None,
        status=DocumentStatus(status) if status in DocumentStatus._value2member_map_ else None,
        cabinet_id=request.query.get("cabinet") or None,
        expires_before=_day(request.query.get("expires_before")))
    page = await services.licensing.list_visible(
        me, kind, query, PageRequest.from_cursor(PAGE_SIZE, request.query.get("cursor")))
    products = await services.catalog.list_visible(me, PageRequest(MAX_LIMIT))
    filters = {k: v for k, v in request.query.items() if k != "cursor" and v}
    return render(request, "documents.html", {
        "plural": plural, "kind": kind, "views": page.items, "next_cursor": page.next_cursor,
        "badge": badge, "products": products.items, "filters": filters,
        "statuses": [s.value for s in DocumentStatus]})


async def _document_page(request: web.Request, me: Principal, plural: str,
                         kind: DocumentKind, *, status: int = 200,
                         **extra: Any) -> web.Response:
    services = request.app[SERVICES]
    view = await services.licensing.get(me, kind, request.match_info["id"])
    targets = await services.licensing.transfer_targets(me, kind, view.document.id)
    releases: list[Any] = []
    if kind is DocumentKind.LICENSE:
        releases = (await services.downloads.for_license(me, view.document.id)).releases
    return render(request, "document.html", {
        "plural": plural, "kind": kind, "view": view, "badge": badge(view),
        "targets": targets, "releases": releases,
        "security": ReleaseKind.SECURITY, "max_archive_files": MAX_ARCHIVE_FILES,
        "verify_url": services.documents.verify_url(view.document.number), **extra},
        status=status)


@routes.get(r"/{plural:licenses|certificates}/{id}")
@signed_in
async def document_page(request: web.Request, me: Principal) -> web.StreamResponse:
    plural, kind = _kind(request)
    return await _document_page(request, me, plural, kind, moved=bool(request.query.get("moved")))


@routes.post(r"/{plural:licenses|certificates}/{id}/transfer")
@signed_in
async def transfer(request: web.Request, me: Principal) -> web.StreamResponse:
    plural, kind = _kind(request)
    form = await form_of(request)
    try:
        await request.app[SERVICES].licensing.transfer(
            me, kind, request.match_info["id"], form.get("cabinet_id", ""))
    except DomainError as exc:
        if exc.status == 404 and exc.field != "cabinet_id":
            raise
        return await _document_page(request, me, plural, kind, status=exc.status,
                                    error=exc.detail)
    return see_other(f"/{plural}/{request.match_info['id']}?moved=1")


@routes.get("/downloads")
@signed_in
async def download_history(request: web.Request, me: Principal) -> web.StreamResponse:
    page = await request.app[SERVICES].downloads.history(
        me, PageRequest.from_cursor(PAGE_SIZE, request.query.get("cursor")))
    return render(request, "downloads.html", {"entries": page.items,
                                              "next_cursor": page.next_cursor})


