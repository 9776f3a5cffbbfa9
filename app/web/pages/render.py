"""Rendering portal pages with the context every page shares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp_jinja2
from aiohttp import web

from app.domain.access import capabilities
from app.domain.notifications import NotificationKind
from app.web.keys import PRINCIPAL, REQUEST_ID, SETTINGS
from app.web.pages.session import csrf_token

# The live bell listens for one server-sent event name per kind.
NOTIFICATION_KINDS = [kind.value for kind in NotificationKind]


def render(request: web.Request, template: str, context: Mapping[str, Any] | None = None, *,
           status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    settings = request.app[SETTINGS]
    me = request.get(PRINCIPAL)
    base = {
        "brand": settings.web.brand_name,
        "me": me,
        # What the signed-in principal may do, for the page to offer or leave out.
        "can": capabilities(me) if me is not None else None,
        "csrf_token": csrf_token(request),
        "request_id": request.get(REQUEST_ID, ""),
        "path": request.path,
        "notification_kinds": NOTIFICATION_KINDS,
    }
    response = aiohttp_jinja2.render_template(template, request, {**base, **(context or {})},
                                              status=status)
    if headers:
        response.headers.update(headers)
    return response


def error_page(request: web.Request, status: int, title: str, detail: str, *,
               headers: Mapping[str, str] | None = None) -> web.StreamResponse:
    if status == 401:
        return login_redirect(request)
    return render(request, "error.html", {"status": status, "title": title, "detail": detail},
                  status=status, headers=headers)


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def login_redirect(request: web.Request) -> web.Response:
    if request.method != "GET" or request.path in ("/", "/login"):
        return see_other("/login")
    return see_other("/login?" + urlencode({"next": request.path_qs}))


def safe_next(target: str | None) -> str:
    """Only a path on this site. Browsers drop tabs and newlines from URLs and read "\\" as
    "/", so any control character or backslash is refused, not just a leading "//"."""
    if (not target or not target.startswith("/") or target.startswith("//")
            or "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target)):
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"
