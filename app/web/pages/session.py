"""The browser session: tokens in HttpOnly cookies, rotated on expiry, and CSRF tokens."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from http.cookies import SimpleCookie

from aiohttp import hdrs, web

from app.domain.errors import DomainError, Unauthenticated
from app.domain.sessions import TokenPair
from app.domain.users import Principal
from app.web.api.common import behind_https, client_address
from app.web.keys import SERVICES, SESSION_COOKIES, SETTINGS

ACCESS_COOKIE = "portal_access"
REFRESH_COOKIE = "portal_refresh"
CSRF_COOKIE = "portal_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class CsrfFailed(DomainError):
    status = 403
    slug = "csrf"
    title = "CSRF check failed"


async def cookie_principal(request: web.Request) -> Principal | None:
    """The user of the session cookies; an expired access token is renewed with the refresh
    token, and the new cookies go out with the response."""
    auth = request.app[SERVICES].auth
    address = client_address(request)
    access = request.cookies.get(ACCESS_COOKIE)
    if access:
        try:
            return await auth.authenticate(access, address)
        except Unauthenticated:
            pass
    refresh = request.cookies.get(REFRESH_COOKIE)
    if not refresh:
        return None
    try:
        principal, pair = await auth.resume_session(refresh, address)
    except Unauthenticated:
        end_session(request)
        return None
    if pair is not None:
        start_session(request, pair)
    return principal


def start_session(request: web.Request, pair: TokenPair) -> None:
    cookies = _pending(request)
    cookies[ACCESS_COOKIE] = pair.access_token
    cookies[REFRESH_COOKIE] = pair.refresh_token


def end_session(request: web.Request) -> None:
    cookies = _pending(request)
    cookies[ACCESS_COOKIE] = None
    cookies[REFRESH_COOKIE] = None


def csrf_token(request: web.Request) -> str:
    """The token forms must echo: an HMAC of this browser's random CSRF cookie."""
    seed = _pending(request).get(CSRF_COOKIE) or request.cookies.get(CSRF_COOKIE)
    if not seed:
        seed = secrets.token_urlsafe(24)
        _pending(request)[CSRF_COOKIE] = seed
    return _sign(request, seed)


# Page forms that send a file: the handler reads the body as it arrives, the CSRF token
# first; the middlewares leave it unread (it may be far larger than web.max_body_bytes).
_STREAMED_FORMS = re.compile(r"^/support/[^/]+/files$")


def streams_its_form(request: web.Request) -> bool:
    return request.method == "POST" and _STREAMED_FORMS.match(request.path) is not None


def check_csrf(request: web.Request, supplied: str | None) -> None:
    seed = request.cookies.get(CSRF_COOKIE)
    if not seed or not supplied or not hmac.compare_digest(_sign(request, seed), supplied):
        raise CsrfFailed("The form has expired or did not come from this portal. "
                         "Reload the page and try again.")


def _sign(request: web.Request, seed: str) -> str:
    secret = request.app[SERVICES].web_secret
    return hmac.new(secret, seed.encode(), hashlib.sha256).hexdigest()


def _pending(request: web.Request) -> dict[str, str | None]:
    if SESSION_COOKIES not in request:
        request[SESSION_COOKIES] = {}
    return request[SESSION_COOKIES]


async def write_cookies(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: set or clear what the request decided, whatever the response."""
    pending = request.get(SESSION_COOKIES)
    if not pending:
        return
    settings = request.app[SETTINGS]
    max_ages = {ACCESS_COOKIE: settings.auth.access_token_ttl,
                REFRESH_COOKIE: settings.auth.refresh_token_ttl, CSRF_COOKIE: None}
    # The signal runs after aiohttp serialised the response's cookie jar, so the
    # Set-Cookie headers are written here directly.
    for name, value in pending.items():
        jar: SimpleCookie = SimpleCookie()
        jar[name] = value or ""
        morsel = jar[name]
        morsel["path"] = "/"
        morsel["httponly"] = True
        morsel["samesite"] = "Lax"
        if settings.secure_cookies or behind_https(request):
            morsel["secure"] = True
        max_age = 0 if value is None else max_ages[name]
        if max_age is not None:
            morsel["max-age"] = str(max_age)
        response.headers.add(hdrs.SET_COOKIE, morsel.OutputString())
