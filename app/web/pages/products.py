"""Portal pages for the product catalogue and each product's releases."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from app.domain.errors import DomainError, NotFound
from app.domain.paging import PageRequest
from app.domain.products import Product
from app.domain.releases import ReleaseKind
from app.domain.users import Principal
from app.services.catalog import ProductChanges, ProductDraft
from app.web.keys import SERVICES
from app.web.pages.common import PAGE_SIZE, form_of, signed_in
from app.web.pages.render import render, see_other

routes = web.RouteTableDef()


@routes.get("/products")
@signed_in
async def product_list(request: web.Request, me: Principal) -> web.StreamResponse:
    page = await request.app[SERVICES].catalog.list_visible(
        me, PageRequest.from_cursor(PAGE_SIZE, request.query.get("cursor")))
    return render(request, "products.html", {
        "products": page.items, "next_cursor": page.next_cursor})


def _draft_form(form: dict[str, str]) -> dict[str, Any]:
    return {"name": form.get("name", ""), "description": form.get("description", ""),
            "bucket": form.get("bucket", ""), "prefix": form.get("prefix", ""),
            "active": form.get("active") == "on",
            "parameters_text": form.get("parameters", "")}


def _form_values(product: Product | ProductDraft) -> dict[str, Any]:
    """A product (or the draft of a new one) as its form shows it."""
    return {"code": product.code, "name": product.name, "description": product.description,
            "bucket": product.bucket, "prefix": product.prefix or "", "active": product.active,
            "parameters": json.dumps(product.parameters, indent=2)}


@routes.get("/products/new")
@signed_in
async def product_new(request: web.Request, me: Principal) -> web.StreamResponse:
    blank = request.app[SERVICES].catalog.blank(me)
    return render(request, "product_form.html", {"product": None, "form": _form_values(blank)})


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
            "errors": exc.each()}, status=exc.status)
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
        "releases": releases,
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
        return await _product_page(request, me, product, status=exc.status,
                                   errors=exc.each(),
                                   form=form | {"active": form.get("active") == "on"})
    return see_other(f"/products/{product.id}?saved=1")
