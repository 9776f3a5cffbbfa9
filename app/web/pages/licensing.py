"""Portal pages for licenses and support certificates, and the download history."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.domain.errors import DomainError, Invalid
from app.domain.licensing import DocumentKind, DocumentStatus
from app.domain.paging import MAX_LIMIT, Page, PageRequest
from app.domain.releases import MAX_ARCHIVE_FILES, ReleaseKind
from app.domain.users import Principal
from app.services.licensing import DocumentQuery, DocumentView
from app.web.keys import SERVICES, SETTINGS
from app.web.pages.audit import TIME_COLUMNS, audit_filters
from app.web.pages.common import form_of, signed_in
from app.web.pages.listing import Column, day_or_none, fetch_page, listing
from app.web.pages.markup import day
from app.web.pages.render import render, see_other

routes = web.RouteTableDef()
KINDS = {"licenses": DocumentKind.LICENSE, "certificates": DocumentKind.CERTIFICATE}
EXPIRING_DAYS = 30


def badge(view: DocumentView) -> tuple[str, str]:
    """(css class, words) of a document's state, as a customer reads it."""
    status = view.status
    if status in (DocumentStatus.REVOKED, DocumentStatus.EXPIRED):
        return "off", status.label
    if status is DocumentStatus.PENDING:
        return "pending", f"{status.label}: from {day(view.document.valid_from)}"
    days = view.days_left
    if days is None:
        return "on", f"{status.label}, perpetual"
    if days <= EXPIRING_DAYS:
        return "warn", f"{status.label}, expires today" if days == 0 else \
            f"{status.label}, expires in {days} day{'s' if days != 1 else ''}"
    return "on", status.label


def _kind(request: web.Request) -> tuple[str, DocumentKind]:
    plural = request.match_info["plural"]
    if plural not in KINDS:
        raise web.HTTPNotFound()
    return plural, KINDS[plural]


DOCUMENT_FILTERS = ("product", "status", "expires_before", "cabinet")
DOCUMENT_COLUMNS = [Column("number", "Number"), Column("product", "Product"),
                    Column("holder", "Holder"), Column("valid_to", "Valid until")]


@routes.get(r"/{plural:licenses|certificates}")
@signed_in
async def document_list(request: web.Request, me: Principal) -> web.StreamResponse:
    plural, kind = _kind(request)
    services = request.app[SERVICES]
    # A filter the list cannot use (an old bookmark, a typo) is dropped and said so: the
    # list still shows, never an error page.
    notices: list[str] = []
    controls = listing(request, DOCUMENT_COLUMNS, "number", notices)
    filters = controls.query
    status = filters.get("status")
    if status is not None and status not in DocumentStatus._value2member_map_:
        notices.append(f"“{status}” is not a status; showing every status.")
        del filters["status"]
    expires_before = day_or_none(filters.get("expires_before"))
    if "expires_before" in filters and expires_before is None:
        notices.append(f"“{filters.pop('expires_before')}” is not a date (YYYY-MM-DD); "
                       "showing every end date.")
    holder = None
    if "cabinet" in filters:
        try:
            holder = await services.cabinets.get(me, filters["cabinet"])
        except DomainError:
            notices.append("That organisation is not one you can see; showing all of yours.")
            del filters["cabinet"]

    async def fetch(page: PageRequest) -> Page[DocumentView]:
        while True:
            query = DocumentQuery(
                product=filters.get("product"),
                status=DocumentStatus(filters["status"]) if "status" in filters else None,
                cabinet_id=holder.id if holder else None, expires_before=expires_before,
                search=controls.search)
            try:
                return await services.licensing.list_visible(me, kind, query, page)
            except DomainError as exc:
                if exc.field != "product" or "product" not in filters:
                    raise
                notices.append(f"No product has the code “{filters.pop('product')}”; "
                               "showing every product.")

    page = await fetch_page(controls, notices, fetch)
    products = await services.catalog.list_visible(me, PageRequest(MAX_LIMIT))
    return render(request, "documents.html", {
        "plural": plural, "kind": kind, "views": page.items, "list": controls,
        "badge": badge, "products": products.items, "filters": filters, "holder": holder,
        "filtered": any(key in filters for key in ("q", *DOCUMENT_FILTERS)),
        "notices": notices, "statuses": list(DocumentStatus)})


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
        "verify_url": services.documents.verify_url(view.document.number),
        "contact": request.app[SETTINGS].support.renewal_contact,
        "expiring_days": EXPIRING_DAYS, "form": {}, **extra},
        status=status)


@routes.get(r"/{plural:licenses|certificates}/{id}")
@signed_in
async def document_page(request: web.Request, me: Principal) -> web.StreamResponse:
    plural, kind = _kind(request)
    return await _document_page(request, me, plural, kind, moved=bool(request.query.get("moved")),
                                changed=CHANGED.get(request.query.get("changed", "")))


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


CHANGED = {"issued": "Issued by hand: it is in the audit log, and the holder's users are told.",
           "extended": "Extended: the new end date is set, and the holder's users are told.",
           "revoked": "Revoked: it is no longer valid, and the holder's users are told."}


@routes.post(r"/{plural:licenses|certificates}/{id}/extend")
@routes.post(r"/{plural:licenses|certificates}/{id}/revoke")
@signed_in
async def change_by_hand(request: web.Request, me: Principal) -> web.StreamResponse:
    """Staff administrators: a later end date, or a revocation, each with a reason."""
    plural, kind = _kind(request)
    form = await form_of(request)
    issuing, document_id = request.app[SERVICES].issuing, request.match_info["id"]
    try:
        if request.path.endswith("/extend"):
            valid_to = day_or_none(form.get("valid_to"))
            if valid_to is None:
                raise Invalid("Choose the new end date.", field="valid_to")
            await issuing.extend(me, kind, document_id, valid_to, form.get("reason", ""))
            done = "extended"
        else:
            await issuing.revoke(me, kind, document_id, form.get("reason", ""))
            done = "revoked"
    except DomainError as exc:
        if exc.status == 404:
            raise
        return await _document_page(request, me, plural, kind, status=exc.status,
                                    error=exc.detail, form=form)
    return see_other(f"/{plural}/{document_id}?changed={done}")


@routes.get("/downloads")
@signed_in
async def download_history(request: web.Request, me: Principal) -> web.StreamResponse:
    """Newest first; by product, by who (part of an e-mail) and by days."""
    services = request.app[SERVICES]
    notices: list[str] = []
    controls = listing(request, TIME_COLUMNS, "-at", notices)
    filters = audit_filters(controls, notices)
    page = await fetch_page(controls, notices, lambda page: services.downloads.history(
        me, page, filters))
    products = await services.catalog.list_visible(me, PageRequest(MAX_LIMIT))
    return render(request, "downloads.html", {
        "entries": page.items, "list": controls, "notices": notices, "filters": controls.query,
        "products": products.items,
        "filtered": any(k in controls.query for k in ("who", "product", "from", "to"))})


