"""Portal pages for licenses, support certificates and the product catalogue."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from aiohttp import web

from app.domain import access
from app.domain.errors import DomainError, Invalid, NotFound
from app.domain.licensing import DocumentKind, DocumentStatus
from app.domain.paging import MAX_LIMIT, PageRequest
from app.domain.products import Product
from app.domain.releases import MAX_ARCHIVE_FILES, ReleaseKind
from app.domain.users import Principal
from app.services.catalog import ProductChanges, ProductDraft
from app.services.licensing import DocumentQuery, DocumentView
from app.web.keys import SERVICES
from app.web.pages.render import render, see_other
from app.web.pages.views import PAGE_SIZE, form_of, signed_in

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
    targets: list[Any] = []
    may_transfer = access.may_transfer(me)
    if may_transfer and view.status is not DocumentStatus.REVOKED:
        targets = list((await services.cabinets.below(me, view.cabinet.id,
                                                      PageRequest(MAX_LIMIT))).items)
    releases: list[Any] = []
    if kind is DocumentKind.LICENSE:
        releases = (await services.downloads.for_license(me, view.document.id)).releases
    return render(request, "document.html", {
        "plural": plural, "kind": kind, "view": view, "badge": badge(view),
        "targets": targets, "may_transfer": may_transfer, "releases": releases,
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


@routes.get("/products")
@signed_in
async def product_list(request: web.Request, me: Principal) -> web.StreamResponse:
    page = await request.app[SERVICES].catalog.list_visible(
        me, PageRequest.from_cursor(PAGE_SIZE, request.query.get("cursor")))
    return render(request, "products.html", {
        "products": page.items, "next_cursor": page.next_cursor,
        "may_manage": access.may_manage_products(me)})


def _draft_form(form: dict[str, str]) -> dict[str, Any]:
    text = form.get("parameters", "").strip() or "{}"
    try:
        parameters = json.loads(text)
    except ValueError:
        parameters = None
    if not isinstance(parameters, dict):
        raise Invalid("Parameters must be a JSON object, such as {\"editions\": [\"Pro\"]}.",
                      field="parameters")
    return {"name": form.get("name", ""), "description": form.get("description", ""),
            "bucket": form.get("bucket", ""), "prefix": form.get("prefix", ""),
            "active": form.get("active") == "on", "parameters": parameters}


def _form_values(product: Any) -> dict[str, Any]:
    return {"name": product.name, "description": product.description, "bucket": product.bucket,
            "prefix": product.prefix, "active": product.active,
            "parameters": json.dumps(product.parameters, indent=2)}


@routes.get("/products/new")
@signed_in
async def product_new(request: web.Request, me: Principal) -> web.StreamResponse:
    access.require_may_manage_products(me)
    return render(request, "product_form.html", {
        "product": None, "form": {"bucket": "releases", "active": True, "parameters": "{}"}})


@routes.post("/products/new")
@signed_in
async def product_create(request: web.Request, me: Principal) -> web.StreamResponse:
    form = await form_of(request)
    try:
        fields = _draft_form(form)
        product = await request.app[SERVICES].catalog.create(me, ProductDraft(
            code=form.get("code", ""), prefix=fields.pop("prefix") or None, **fields))
    except DomainError as exc:
        if exc.status == 403:
            raise
        return render(request, "product_form.html", {
            "product": None, "form": form | {"active": form.get("active") == "on"},
            "error": exc.detail}, status=exc.status)
    return see_other(f"/products/{product.id}?saved=1")


async def _product_page(request: web.Request, me: Principal, product: Product, *,
                        status: int = 200, **extra: Any) -> web.Response:
    """The product, its form for staff, and its releases, newest first. Customers see the
    releases of the products they hold a license for."""
    services = request.app[SERVICES]
    try:
        releases = await services.releases.list_for_product(
            me, product.id, PageRequest.from_cursor(PAGE_SIZE, request.query.get("cursor")))
    except NotFound:
        releases = None
    return render(request, "product_form.html", {
        "product": product, "form": _form_values(product),
        "may_manage": access.may_manage_products(me), "releases": releases,
        "security": ReleaseKind.SECURITY, "saved": request.query.get("saved"),
        "scanned": request.query.get("scanned"), **extra}, status=status)


@routes.get("/products/{id}")
@signed_in
async def product_page(request: web.Request, me: Principal) -> web.StreamResponse:
    product = await request.app[SERVICES].catalog.get(me, request.match_info["id"])
    return await _product_page(request, me, product)


@routes.post("/products/{id}/scan")
@signed_in
async def product_scan(request: web.Request, me: Principal) -> web.StreamResponse:
    product_id = request.match_info["id"]
    added = await request.app[SERVICES].releases.scan(me, product_id)
    return see_other(f"/products/{product_id}?scanned={len(added)}#releases")


@routes.post("/products/{id}/releases/{release_id}")
@signed_in
async def release_yank(request: web.Request, me: Principal) -> web.StreamResponse:
    form = await form_of(request)
    product_id = request.match_info["id"]
    await request.app[SERVICES].releases.set_yanked(
        me, product_id, request.match_info["release_id"], form.get("yanked") == "1")
    return see_other(f"/products/{product_id}#release-{request.match_info['release_id']}")


@routes.post("/products/{id}")
@signed_in
async def product_update(request: web.Request, me: Principal) -> web.StreamResponse:
    form = await form_of(request)
    catalog = request.app[SERVICES].catalog
    try:
        product = await catalog.update(me, request.match_info["id"],
                                       ProductChanges(**_draft_form(form)))
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        product = await catalog.get(me, request.match_info["id"])
        return await _product_page(request, me, product, status=exc.status, error=exc.detail,
                                   form=form | {"active": form.get("active") == "on"})
    return see_other(f"/products/{product.id}?saved=1")
