"""The browser portal: sign-in, the organisation pages, set-password and the API docs."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from app.domain import access
from app.domain.cabinets import Cabinet, CabinetKind
from app.domain.errors import DomainError, Forbidden, Throttled, Unauthenticated
from app.domain.licensing import NUMBER_PATTERN
from app.domain.paging import PageRequest
from app.domain.roles import Role
from app.domain.users import Principal
from app.services.cabinets import CabinetChanges
from app.services.users import UserChanges
from app.web.api.common import client_address
from app.web.keys import OPENAPI, PRINCIPAL, SERVICES
from app.web.pages.render import login_redirect, render, safe_next, see_other
from app.web.pages.session import REFRESH_COOKIE, end_session, start_session
from app.web.problems import PROBLEM_TYPES

routes = web.RouteTableDef()
PAGE_SIZE = 50
PageHandler = Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]


def signed_in(handler: PageHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def page(request: web.Request) -> web.StreamResponse:
        principal = request.get(PRINCIPAL)
        if principal is None:
            return login_redirect(request)
        return await handler(request, principal)
    page.__name__ = handler.__name__
    return page


async def form_of(request: web.Request) -> dict[str, str]:
    return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}


@routes.get("/")
async def home(request: web.Request) -> web.StreamResponse:
    return see_other("/organisation" if request.get(PRINCIPAL) else "/login")


@routes.get("/login")
async def login_page(request: web.Request) -> web.StreamResponse:
    if request.get(PRINCIPAL) is not None:
        return see_other(safe_next(request.query.get("next")))
    return render(request, "login.html", {"next": safe_next(request.query.get("next")),
                                          "notice": request.query.get("notice")})


@routes.post("/login")
async def login(request: web.Request) -> web.StreamResponse:
    form = await form_of(request)
    target = safe_next(form.get("next"))
    try:
        pair = await request.app[SERVICES].auth.login(
            form.get("email", ""), form.get("password", ""), client_address(request))
    except (Unauthenticated, Throttled) as exc:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Throttled) else None
        return render(request, "login.html",
                      {"next": target, "error": exc.detail, "email": form.get("email", "")},
                      status=exc.status, headers=headers)
    start_session(request, pair)
    return see_other(target)


async def _sign_out(request: web.Request) -> None:
    refresh = request.cookies.get(REFRESH_COOKIE)
    if request.get(PRINCIPAL) is None and not refresh:
        return
    try:
        await request.app[SERVICES].auth.revoke(request.get(PRINCIPAL), refresh)
    except Unauthenticated:
        pass  # already signed out
    end_session(request)


@routes.post("/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    await _sign_out(request)
    return see_other("/login?notice=signed-out")


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


def _allowed(check: Callable[..., None], *args: Any) -> bool:
    try:
        check(*args)
    except Forbidden:
        return False
    return True


async def _cabinet_page(request: web.Request, me: Principal, cabinet_id: str, *,
                        status: int = 200, **extra: Any) -> web.Response:
    services = request.app[SERVICES]
    cabinet = await services.cabinets.get(me, cabinet_id)
    lineage = await services.cabinets.lineage(me, cabinet)
    children = await services.cabinets.children(
        me, cabinet.id, PageRequest.from_cursor(PAGE_SIZE, request.query.get("children")))
    users = await services.users.list_in_cabinet(
        me, cabinet.id, PageRequest.from_cursor(PAGE_SIZE, request.query.get("users")))
    manage_users = _allowed(access.require_may_manage_users, me, cabinet)
    vendor = cabinet.kind is CabinetKind.VENDOR
    roles = [r for r in Role if me.role.outranks_or_equals(r) and r.is_staff == vendor]
    return render(request, "cabinet.html", {
        "cabinet": cabinet, "lineage": lineage, "children": children.items,
        "children_next": children.next_cursor, "users": users.items,
        "users_next": users.next_cursor, "paged": bool(request.query.get("users")
                                                       or request.query.get("children")),
        "manage_users": manage_users,
        "create_child": _allowed(access.require_may_create_child, me, cabinet),
        "edit_cabinet": _allowed(access.require_may_edit_cabinet, me, cabinet),
        "roles": roles, "form": {}, **extra,
    }, status=status)


async def _or_form_error(request: web.Request, me: Principal, cabinet_id: str,
                         action: Awaitable[Any], form: dict[str, str],
                         success: Callable[[Any], Awaitable[web.StreamResponse]],
                         ) -> web.StreamResponse:
    """Run a form's action; on a rule broken, show the cabinet page again with the error."""
    try:
        result = await action
    except DomainError as exc:
        if exc.status == 404:
            raise
        return await _cabinet_page(request, me, cabinet_id, status=exc.status,
                                   error=exc.detail, form=form)
    return await success(result)


@routes.get("/cabinets/{id}")
@signed_in
async def cabinet_page(request: web.Request, me: Principal) -> web.StreamResponse:
    return await _cabinet_page(request, me, request.match_info["id"])


@routes.post("/cabinets/{id}/users")
@signed_in
async def add_user(request: web.Request, me: Principal) -> web.StreamResponse:
    cabinet_id = request.match_info["id"]
    form = await form_of(request)
    role = form.get("role", Role.CUSTOMER_USER.value)
    action = request.app[SERVICES].users.invite(
        me, cabinet_id, form.get("email", ""), form.get("name", ""),
        Role(role) if role in Role._value2member_map_ else Role.CUSTOMER_USER)

    async def shown(invitation: Any) -> web.StreamResponse:
        return await _cabinet_page(request, me, cabinet_id, status=201, invitation=invitation)
    return await _or_form_error(request, me, cabinet_id, action, form, shown)


@routes.post("/cabinets/{id}/children")
@signed_in
async def add_child(request: web.Request, me: Principal) -> web.StreamResponse:
    cabinet_id = request.match_info["id"]
    form = await form_of(request)
    services = request.app[SERVICES]
    parent = await services.cabinets.get(me, cabinet_id)
    action = services.cabinets.create(me, form.get("child_name", ""), parent.kind, parent.id)

    async def opened(child: Cabinet) -> web.StreamResponse:
        return see_other(f"/cabinets/{child.id}")
    return await _or_form_error(request, me, cabinet_id, action, form, opened)


@routes.post("/cabinets/{id}/name")
@signed_in
async def rename_cabinet(request: web.Request, me: Principal) -> web.StreamResponse:
    cabinet_id = request.match_info["id"]
    form = await form_of(request)
    action = request.app[SERVICES].cabinets.update(
        me, cabinet_id, CabinetChanges(name=form.get("name", "")))

    async def back(_: Any) -> web.StreamResponse:
        return see_other(f"/cabinets/{cabinet_id}")
    return await _or_form_error(request, me, cabinet_id, action, form, back)


@routes.post("/cabinets/{id}/users/{user_id}")
@signed_in
async def change_user(request: web.Request, me: Principal) -> web.StreamResponse:
    cabinet_id, user_id = request.match_info["id"], request.match_info["user_id"]
    form = await form_of(request)
    users = request.app[SERVICES].users
    operation = form.get("operation")
    if operation == "delete":
        action: Awaitable[Any] = users.delete(me, cabinet_id, user_id)
    elif operation in ("activate", "deactivate"):
        action = users.update(me, cabinet_id, user_id,
                              UserChanges(active=operation == "activate"))
    elif operation == "role" and form.get("role") in Role._value2member_map_:
        action = users.update(me, cabinet_id, user_id, UserChanges(role=Role(form["role"])))
    else:
        raise web.HTTPBadRequest(reason="Unknown operation.")

    async def back(_: Any) -> web.StreamResponse:
        return see_other(f"/cabinets/{cabinet_id}#users")
    return await _or_form_error(request, me, cabinet_id, action, form, back)


def _set_password_form(request: web.Request, token: str, *, email: str | None = None,
                       error: str | None = None, status: int = 200) -> web.Response:
    # A page of its own, without the top bar: the link may be opened in a browser where
    # somebody else (the administrator who sent it) is still signed in.
    return render(request, "set_password.html", {
        "me": None, "token": token, "email": email, "error": error,
        "min_length": request.app[SERVICES].users.password_min_length}, status=status)


@routes.get("/password/set")
async def set_password_page(request: web.Request) -> web.StreamResponse:
    token = request.query.get("token", "")
    try:
        user = await request.app[SERVICES].users.check_password_link(token)
    except DomainError as exc:
        return _set_password_form(request, "", error=exc.detail, status=exc.status)
    return _set_password_form(request, token, email=user.email)


@routes.post("/password/set")
async def set_password(request: web.Request) -> web.StreamResponse:
    form = await form_of(request)
    token = form.get("token", "")
    email = form.get("username")
    if form.get("password", "") != form.get("password_again", ""):
        return _set_password_form(request, token, email=email, error="The two passwords differ.",
                                  status=422)
    try:
        await request.app[SERVICES].users.set_password(token, form.get("password", ""),
                                                       client_address(request))
    except DomainError as exc:
        return _set_password_form(request, token if exc.field == "password" else "", email=email,
                                  error=exc.detail, status=exc.status)
    # Whoever was signed in here is signed out, so the new password is used next.
    await _sign_out(request)
    return see_other("/login?notice=password-set")


@routes.get("/verify/{number}")
async def verify(request: web.Request) -> web.StreamResponse:
    """Public: whether a document number is valid today, and nothing more."""
    number = request.match_info["number"].upper()
    found = None
    if re.fullmatch(NUMBER_PATTERN, number):
        found = await request.app[SERVICES].licensing.verify(number)
    valid = found is not None and found[1]
    return render(request, "verify.html", {
        "number": number, "valid": valid,
        "label": found[0].label.lower() if found else "document"})


@routes.get("/docs/api")
async def api_docs(request: web.Request) -> web.StreamResponse:
    return render(request, "api_docs.html", {"doc": request.app[OPENAPI]})


@routes.get("/problems")
async def problem_types(request: web.Request) -> web.StreamResponse:
    return render(request, "problems.html", {"problems": PROBLEM_TYPES})


@routes.get("/problems/{slug}")
async def problem_type(request: web.Request) -> web.StreamResponse:
    if request.match_info["slug"] not in PROBLEM_TYPES:
        raise web.HTTPNotFound()
    return see_other(f"/problems#{request.match_info['slug']}")
