"""The organisation pages: the tree of cabinets, and each cabinet's users and children."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from aiohttp import web

from app.domain import access
from app.domain.audit import AuditFilter
from app.domain.cabinets import Cabinet, CabinetKind
from app.domain.errors import DomainError, Invalid
from app.domain.licensing import DocumentKind
from app.domain.paging import MAX_LIMIT, PageRequest, Sort
from app.domain.roles import Role
from app.domain.users import Principal
from app.services import Services
from app.services.cabinets import CabinetChanges
from app.services.issuing import HandIssue
from app.services.licensing import DocumentQuery
from app.services.users import PasswordLink, UserChanges
from app.web.keys import SERVICES
from app.web.pages.audit import object_link
from app.web.pages.common import PAGE_SIZE, form_of, signed_in
from app.web.pages.listing import Column, fetch_page, listing
from app.web.pages.render import render, see_other

routes = web.RouteTableDef()
# Entries of an organisation's history its page shows; the audit log has the rest.
RECENT_HISTORY = 8
# What a form on a cabinet's page does: given the services, the cabinet's id and the form.
FormAction = Callable[[Services, str, dict[str, str]], Awaitable[Any]]


@routes.get("/organisation")
@signed_in
async def my_organisation(request: web.Request, me: Principal) -> web.StreamResponse:
    return see_other(f"/cabinets/{me.cabinet_id}")


CABINET_COLUMNS = [Column("name", "Name"), Column("kind", "Kind"), Column("created", "Created")]
USER_COLUMNS = [Column("name", "Name"), Column("email", "E-mail"), Column("role", "Role"),
                Column("last_sign_in", "Last sign-in")]


async def _cabinets_page(request: web.Request, me: Principal, *, status: int = 200,
                         **extra: Any) -> web.Response:
    notices: list[str] = []
    controls = listing(request, CABINET_COLUMNS, "name", notices)
    page = await fetch_page(controls, notices, lambda page: request.app[
        SERVICES].cabinets.list_visible(me, page, controls.search))
    return render(request, "cabinets.html", {
        "cabinets": page.items, "list": controls, "notices": notices, "form": {},
        "kinds": list(CabinetKind), **extra}, status=status)


@routes.get("/cabinets")
@signed_in
async def cabinets_page(request: web.Request, me: Principal) -> web.StreamResponse:
    return await _cabinets_page(request, me)


@routes.post("/cabinets")
@signed_in
async def create_customer(request: web.Request, me: Principal) -> web.StreamResponse:
    """Staff administrators: a new top-level organisation (a customer, usually)."""
    form = await form_of(request)
    try:
        kind = CabinetKind(form.get("kind") or CabinetKind.CUSTOMER.value)
        created = await request.app[SERVICES].cabinets.create(
            me, form.get("name", ""), kind, None, form.get("external_id", "").strip() or None)
    except ValueError:
        return await _cabinets_page(request, me, status=400, form=form,
                                    error="Choose customer or vendor.")
    except DomainError as exc:
        return await _cabinets_page(request, me, status=exc.status, form=form,
                                    error=exc.detail)
    return see_other(f"/cabinets/{created.id}?created=1")


async def _cabinet_page(request: web.Request, me: Principal, cabinet_id: str, *,
                        status: int = 200, **extra: Any) -> web.Response:
    services = request.app[SERVICES]
    cabinet = await services.cabinets.get(me, cabinet_id)
    lineage = await services.cabinets.lineage(me, cabinet)
    children = await services.cabinets.children(
        me, cabinet.id, PageRequest.from_cursor(PAGE_SIZE, request.query.get("children")))
    notices: list[str] = []
    controls = listing(request, USER_COLUMNS, "name", notices)
    users = await fetch_page(controls, notices, lambda page: services.users.list_in_cabinet(
        me, cabinet.id, page, controls.search))
    counted = PageRequest.numbered(1, 1, Sort("number"))
    held = {kind.value: (await services.licensing.list_visible(
        me, kind, DocumentQuery(cabinet_id=cabinet.id), counted)).total for kind in DocumentKind}
    history = None
    if access.may_read_audit(me):
        history = await services.audit_log.entries(
            me, AuditFilter(cabinet_id=cabinet.id), PageRequest.numbered(
                RECENT_HISTORY, 1, Sort("at", descending=True)))
    products = None
    if access.may_restructure(me):  # who issues by hand
        products = (await services.catalog.list_visible(me, PageRequest(MAX_LIMIT))).items
    return render(request, "cabinet.html", {
        "held": held, "history": history, "products": products, "kinds": list(DocumentKind),
        "object_link": object_link,
        "cabinet": cabinet, "lineage": lineage, "children": children.items,
        "children_next": children.next_cursor, "users": users.items, "list": controls,
        "notices": notices, "created": bool(request.query.get("created")),
        "here": access.in_cabinet(me, cabinet), "form": {}, **extra,
    }, status=status)


async def _submit(request: web.Request, me: Principal, action: FormAction,
                  success: Callable[[Any], Awaitable[web.StreamResponse]]
                  ) -> web.StreamResponse:
    """Run a form of a cabinet's page; on a rule broken, show the page again with the
    error and what was typed."""
    cabinet_id = request.match_info["id"]
    form = await form_of(request)
    try:
        result = await action(request.app[SERVICES], cabinet_id, form)
    except DomainError as exc:
        if exc.status == 404:
            raise
        return await _cabinet_page(request, me, cabinet_id, status=exc.status,
                                   error=exc.detail, form=form)
    return await success(result)


def _back(location: str) -> Callable[[Any], Awaitable[web.StreamResponse]]:
    async def back(_: Any) -> web.StreamResponse:
        return see_other(location)
    return back


@routes.get("/cabinets/{id}")
@signed_in
async def cabinet_page(request: web.Request, me: Principal) -> web.StreamResponse:
    return await _cabinet_page(request, me, request.match_info["id"])


@routes.post("/cabinets/{id}/users")
@signed_in
async def add_user(request: web.Request, me: Principal) -> web.StreamResponse:
    async def invite(services: Services, cabinet_id: str, form: dict[str, str]) -> Any:
        role = form.get("role", "")
        return await services.users.invite(
            me, cabinet_id, form.get("email", ""), form.get("name", ""),
            Role(role) if role in Role._value2member_map_ else Role.CUSTOMER_USER)

    async def shown(invitation: Any) -> web.StreamResponse:
        return await _cabinet_page(request, me, request.match_info["id"], status=201,
                                   invitation=invitation)
    return await _submit(request, me, invite, shown)


@routes.post("/cabinets/{id}/children")
@signed_in
async def add_child(request: web.Request, me: Principal) -> web.StreamResponse:
    async def create(services: Services, cabinet_id: str, form: dict[str, str]) -> Cabinet:
        parent = await services.cabinets.get(me, cabinet_id)
        return await services.cabinets.create(me, form.get("child_name", ""), parent.kind,
                                              parent.id)

    async def opened(child: Cabinet) -> web.StreamResponse:
        return see_other(f"/cabinets/{child.id}")
    return await _submit(request, me, create, opened)


@routes.post("/cabinets/{id}/documents")
@signed_in
async def issue_by_hand(request: web.Request, me: Principal) -> web.StreamResponse:
    """Staff administrators: a license or certificate outside the purchases feed."""
    async def issue(services: Services, cabinet_id: str, form: dict[str, str]) -> Any:
        kinds = {kind.value: kind for kind in DocumentKind}
        if form.get("kind") not in kinds:
            raise Invalid("Choose license or support certificate.", field="kind")
        seats = form.get("seats", "").strip()
        valid_from, valid_to = _date(form, "valid_from"), _date(form, "valid_to")
        return await services.issuing.issue(me, HandIssue(
            kind=kinds[form["kind"]], cabinet_id=cabinet_id,
            product_id=form.get("product_id", ""),
            valid_from=valid_from, valid_to=valid_to,
            reason=form.get("reason", ""), edition=form.get("edition", ""),
            seats=int(seats) if seats.isdigit() else None, level=form.get("level", ""),
            license_number=form.get("license_number", "")))

    async def opened(document: Any) -> web.StreamResponse:
        plural = "licenses" if document.kind is DocumentKind.LICENSE else "certificates"
        return see_other(f"/{plural}/{document.id}?changed=issued")
    return await _submit(request, me, issue, opened)


def _date(form: dict[str, str], field: str) -> date | None:
    text = form.get(field, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid("A date as YYYY-MM-DD.", field=field) from None


@routes.post("/cabinets/{id}/name")
@signed_in
async def rename_cabinet(request: web.Request, me: Principal) -> web.StreamResponse:
    async def rename(services: Services, cabinet_id: str, form: dict[str, str]) -> Any:
        return await services.cabinets.update(me, cabinet_id,
                                              CabinetChanges(name=form.get("name", "")))
    return await _submit(request, me, rename, _back(f"/cabinets/{request.match_info['id']}"))


@routes.post("/cabinets/{id}/users/{user_id}")
@signed_in
async def change_user(request: web.Request, me: Principal) -> web.StreamResponse:
    user_id = request.match_info["user_id"]

    async def change(services: Services, cabinet_id: str, form: dict[str, str]) -> Any:
        users, operation = services.users, form.get("operation")
        if operation == "delete":
            return await users.delete(me, cabinet_id, user_id)
        if operation in ("activate", "deactivate"):
            return await users.update(me, cabinet_id, user_id,
                                      UserChanges(active=operation == "activate"))
        if operation == "role" and form.get("role") in Role._value2member_map_:
            return await users.update(me, cabinet_id, user_id,
                                      UserChanges(role=Role(form["role"])))
        if operation == "password-link":
            return await users.send_password_link(me, cabinet_id, user_id)
        raise web.HTTPBadRequest(reason="Unknown operation.")

    async def done(result: Any) -> web.StreamResponse:
        if isinstance(result, PasswordLink):  # said on the page: nothing else changed
            return await _cabinet_page(request, me, request.match_info["id"], link_sent=result)
        return see_other(f"/cabinets/{request.match_info['id']}#users")
    return await _submit(request, me, change, done)
