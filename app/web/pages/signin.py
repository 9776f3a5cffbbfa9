"""Signing in and out, asking for a new password, and setting one from a one-time link."""

from __future__ import annotations

from aiohttp import web

from app.domain.errors import DomainError, Invalid, Throttled, Unauthenticated
from app.domain.users import check_email
from app.web.api.auth import LINK_ON_ITS_WAY
from app.web.api.common import after_answer, client_address
from app.web.keys import PRINCIPAL, SERVICES
from app.web.pages.common import form_of
from app.web.pages.render import render, safe_next, see_other
from app.web.pages.session import REFRESH_COOKIE, end_session, start_session

routes = web.RouteTableDef()


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


@routes.get("/password/forgot")
async def forgot_password_page(request: web.Request) -> web.StreamResponse:
    return render(request, "forgot_password.html", {"email": request.query.get("email", "")})


@routes.post("/password/forgot")
async def forgot_password(request: web.Request) -> web.StreamResponse:
    form = await form_of(request)
    email = form.get("email", "")
    try:
        check_email(email)
    except Invalid as exc:  # not an address at all: says nothing about accounts
        return render(request, "forgot_password.html", {"email": email, "error": exc.detail},
                      status=exc.status)
    after_answer(request, request.app[SERVICES].users.request_password_link(
        email, client_address(request)), "a password link")
    return render(request, "forgot_password.html", {"email": email, "sent": LINK_ON_ITS_WAY},
                  status=202)


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
