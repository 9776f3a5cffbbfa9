"""The organisation pages: the tree of cabinets, and each cabinet's users and children."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from app.domain import access
from app.domain.cabinets import Cabinet
from app.domain.errors import DomainError
from app.domain.paging import PageRequest
from app.domain.roles import Role
from app.domain.users import Principal
from app.services import Services
from app.services.cabinets import CabinetChanges
from app.services.users import PasswordLink, UserChanges
from app.web.keys import SERVICES
from app.web.pages.common import PAGE_SIZE, form_of, signed_in
from app.web.pages.render import render, see_other

routes = web.RouteTableDef()
# What a form on a cabinet's page does: given the services, the cabinet's id and the form.
FormAction = Callable[[Services, str, dict[str, str]], Awaitable[Any]]


@routes.get("/organisation")
@signed_in
async def my_organisation(request: web.Request, me: Principal) -> web.StreamResponse:
    return see_other(f"/cabinets/{me.cabinet_id}")


@routes.get("/cabinets")
@signed_in
async def cabinets_page(request: web.Request, me: Principal) -> web.StreamResponse:
    cursor = request.query.get("cursor")
    page = await request.app[SERVICES].cabinets.list_visible(
        me, PageRequest.from_cursor(PAGE_SIZE, cursor))
    return render(request, "cabinets.html", {"cabinets": page.items,
                                             "next_cursor": page.next_cursor})


async def _cabinet_page(request: web.Request, me: Principal, cabinet_id: str, *,
                        status: int = 200, **extra: Any) -> web.Response:
    services = request.app[SERVICES]
    cabinet = await services.cabinets.get(me, cabinet_id)
    lineage = await services.cabinets.lineage(me, cabinet)
    children = await services.cabinets.children(
        me, cabinet.id, PageRequest.from_cursor(PAGE_SIZE, request.query.get("children")))
    users = await services.users.list_in_cabinet(
        me, cabinet.id, PageRequest.from_cursor(PAGE_SIZE, request.query.get("users")))
    return render(request, "cabinet.html", {
        "cabinet": cabinet, "lineage": lineage, "children": children.items,
        "children_next": children.next_cursor, "users": users.items,
        "users_next": users.next_cursor, "paged": bool(request.query.get("users")
                                                       or request.query.get("children")),
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
