"""Request ids, authentication, CSRF, errors as problem details, and response headers."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler
from aiohttp.web_request import FileField
from multidict import MultiDictProxy

from app.domain.errors import DomainError, Throttled, TryAgain, Unauthenticated
from app.tracing import tag_request
from app.web.api.common import client_address, from_trusted_proxy
from app.web.keys import DRAINING, LEFT_ANSWERS, OPENAPI, PRINCIPAL, REQUEST_ID, SERVICES, SETTINGS
from app.web.openapi import SHORT_ANSWERS, RequestInvalid, documented_methods
from app.web.pages import session
from app.web.pages.render import error_page
from app.web.problems import problem, slug_for_status
from app.web.reports import wanted_report
from ports.documents import RenderingFailed
from ports.helpdesk import HelpdeskUnavailable
from ports.objects import ObjectNotFound, ObjectStoreUnavailable
from ports.storage import ConcurrentUpdate, StorageUnavailable

log = logging.getLogger("portal.web")
_REQUEST_ID = re.compile(r"^[\w.:-]{8,128}$")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Paths that answer in JSON rather than HTML.
API_PREFIXES = ("/api/", "/.well-known/", "/healthz", "/readyz")
STATIC_PREFIX = "/static/"


def is_api(request: web.Request) -> bool:
    return request.path.startswith(API_PREFIXES)


@web.middleware
async def finish_short_answers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A client that leaves cancels its request (so that streams and long work stop), but a
    JSON answer of a few milliseconds is finished anyway: cancelled mid-statement, the
    PostgreSQL connection would be closed, and the pool would open a new one."""
    if request.match_info.handler not in SHORT_ANSWERS:
        return await handler(request)
    answer = asyncio.ensure_future(handler(request))
    try:
        return await asyncio.shield(answer)
    except asyncio.CancelledError:
        started = time.monotonic()
        left = request.app[LEFT_ANSWERS]
        left.add(answer)
        answer.add_done_callback(left.discard)
        answer.add_done_callback(lambda done: _answered_to_no_one(request, done, started))
        raise


async def finish_left_answers(app: web.Application) -> AsyncIterator[None]:
    """Keeps the work still running after its answer (answers being finished for clients
    that left, work done after the answer went); on shutdown, waits for it (it would
    otherwise meet a closed storage)."""
    app[LEFT_ANSWERS] = set()
    yield
    if pending := app[LEFT_ANSWERS].copy():
        await asyncio.wait(pending, timeout=10)


def _answered_to_no_one(request: web.Request, done: asyncio.Future[web.StreamResponse],
                        left: float) -> None:
    """What the access log cannot say of a request whose client went away (as nginx's 499)."""
    if done.cancelled():
        outcome = "cancelled"
    elif done.exception() is not None:
        outcome = type(done.exception()).__name__
    else:
        outcome = str(done.result().status)
    log.info('client gone: "%s %s" finished %.1f ms after it left (%s) request_id=%s',
             request.method, request.path, (time.monotonic() - left) * 1000, outcome,
             request.get(REQUEST_ID, "-"))


@web.middleware
async def request_ids(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Each request's id: the one the portal's own proxy sent (`web.proxy_hops` > 0), so
    that its log and the portal's meet; else a new one (a client's own is not trusted)."""
    incoming = request.headers.get("X-Request-ID", "")
    trusted = from_trusted_proxy(request) and _REQUEST_ID.match(incoming)
    request[REQUEST_ID] = incoming if trusted else uuid.uuid4().hex
    tag_request(request[REQUEST_ID])
    return await handler(request)


async def read_form(request: web.Request) -> MultiDictProxy[str | bytes | bytearray | FileField]:
    """A page form's fields; a body that cannot be read as one is the client's error."""
    try:
        async with asyncio.timeout(request.app[SETTINGS].server.body_timeout_seconds):
            return await request.post()
    except TimeoutError:
        raise web.HTTPRequestTimeout(text="The form stopped arriving before it was whole.") \
            from None
    except LookupError:
        raise web.HTTPUnsupportedMediaType(
            text="The form's character set is not one this portal reads; send UTF-8.") \
            from None
    except (ValueError, AssertionError, HttpProcessingError):
        # No multipart boundary, a broken part header, bytes that are not UTF-8.
        raise web.HTTPBadRequest(text="The form could not be read.") from None


# Bodies read as they arrive, with a limit of their own (a request's file).
_UPLOADS = re.compile(r"^/api/v1/issues/[^/]+/attachments$")
UPLOAD_FRAMING = 64 * 1024


@web.middleware
async def body_limits(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A declared length over the limit is refused at once (413), before a byte of the body
    is awaited: a client announcing 100 GB and sending one byte holds nothing."""
    declared = request.content_length
    if declared is not None and request.method not in _SAFE_METHODS:
        settings = request.app[SETTINGS]
        limit = settings.web.max_body_bytes
        if _UPLOADS.match(request.path) or session.streams_its_form(request):
            limit = settings.support.max_attachment_bytes + UPLOAD_FRAMING
        if declared > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=declared)
    return await handler(request)


@web.middleware
async def refuse_nul(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No id, path or query value has a NUL in it, and no database takes one in text."""
    if "%00" in request.raw_path or "\x00" in request.path:
        raise web.HTTPBadRequest(text="The address contains a NUL character.")
    if request.method not in _SAFE_METHODS and not is_api(request) and request.can_read_body \
            and not session.streams_its_form(request):
        form = await read_form(request)
        if any("\x00" in str(v) for v in form.values()):
            raise web.HTTPBadRequest(text="The form contains a NUL character.")
    return await handler(request)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes a problem (API) or an error page (portal); never a traceback."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            return web.Response(status=exc.status, headers=exc.headers)
        kept = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
        if exc.status == 405 and is_api(request):
            # aiohttp merges the methods of every route the path matches, so
            # /notifications/read-all would also offer {id}'s PATCH and DELETE.
            kept["Allow"] = ",".join(documented_methods(request.app[OPENAPI], request.path)
                                     ) or kept.get("Allow", "")
        detail = {404: f"Nothing is at {request.path}.",
                  405: f"{request.method} is not allowed on {request.path}."}.get(
                      exc.status, exc.text if exc.text and exc.text != exc.reason else exc.reason)
        return _error(request, exc.status, slug_for_status(exc.status), detail, headers=kept)
    except DomainError as exc:
        headers = {"Retry-After": str(exc.retry_after)} \
            if isinstance(exc, Throttled | TryAgain) else {}
        if isinstance(exc, Unauthenticated):
            headers["WWW-Authenticate"] = 'Bearer realm="portal"'
        if isinstance(exc, RequestInvalid):
            field_errors = exc.errors
        else:
            field_errors = [{"field": each.field, "message": each.detail}
                            for each in exc.each() if each.field]
        return _error(request, exc.status, exc.slug, exc.detail, title=exc.title,
                      errors=field_errors, headers=headers)
    except ConcurrentUpdate:
        return _error(request, 409, "conflict",
                      "Someone changed this at the same moment. Nothing was saved; try again.")
    except RenderingFailed as exc:
        log.error("%s [request %s]", exc, request.get(REQUEST_ID))
        return _error(request, 503, "service-unavailable",
                      "Documents cannot be rendered right now. Try again shortly.",
                      headers={"Retry-After": "30"})
    except ObjectStoreUnavailable as exc:
        return _unavailable(request, "object store", exc,
                            "The file store is not answering. Try again shortly.", 5)
    except ObjectNotFound as exc:
        log.warning("registered but missing from the object store: %s [request %s]", exc,
                    request.get(REQUEST_ID))
        return _error(request, 404, "not-found",
                      "A file of this download is missing from the store. The vendor's staff "
                      "can see this in the log.")
    except HelpdeskUnavailable as exc:
        return _unavailable(request, "helpdesk", exc,
                            "The helpdesk is not answering. Try again shortly.", 30)
    except StorageUnavailable as exc:
        return _unavailable(request, "storage", exc, "The database is not answering. Nothing "
                            "was changed; try again shortly.", 5)
    except Exception:
        log.exception("unhandled error in %s %s [request %s]", request.method, request.path,
                      request.get(REQUEST_ID))
        return _error(request, 500, "internal-error",
                      "Something went wrong on our side. Quote the request id to support.")


def _unavailable(request: web.Request, what: str, exc: Exception, detail: str,
                 retry_after: int) -> web.StreamResponse:
    """A dependency is down: a log line for the operator, 503 for the client."""
    log.error("%s unavailable during %s %s: %s [request %s]", what, request.method,
              request.path, exc, request.get(REQUEST_ID))
    return _error(request, 503, "service-unavailable", detail,
                  headers={"Retry-After": str(retry_after)})


def _error(request: web.Request, status: int, slug: str, detail: str, *,
           title: str | None = None, errors: list[dict[str, str]] | None = None,
           headers: dict[str, str] | None = None) -> web.StreamResponse:
    if is_api(request):
        return problem(request, status, slug, detail, title=title, errors=errors,
                       headers=headers)
    return error_page(request, status, title or "Error", detail, headers=headers)


async def _bearer(request: web.Request) -> None:
    scheme, _, token = request.headers["Authorization"].partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        try:
            request[PRINCIPAL] = await request.app[SERVICES].auth.authenticate(
                token.strip(), client_address(request))
        except Unauthenticated:
            pass  # stays anonymous; operations that need a user answer 401


@web.middleware
async def authentication(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A bearer token, else the session cookies. Cookie-authenticated changes must carry the
    CSRF token: in the form field for portal pages, in X-CSRF-Token for the API."""
    if request.path.startswith(STATIC_PREFIX):
        return await handler(request)  # public files: no session work, no token rotation
    if "Authorization" in request.headers:
        # In a function of its own: this frame lives as long as the response (a live
        # stream: hours), and should not keep a copy of the token all that time.
        await _bearer(request)
        return await handler(request)
    if request.method not in _SAFE_METHODS:
        if is_api(request):
            if _has_session_cookie(request):
                session.check_csrf(request, request.headers.get(session.CSRF_HEADER))
        elif not session.streams_its_form(request):  # that handler checks it itself
            form = await read_form(request)
            supplied = form.get(session.CSRF_FIELD)
            session.check_csrf(request, supplied if isinstance(supplied, str) else None)
    if _has_session_cookie(request):
        principal = await session.cookie_principal(request)
        if principal is not None:
            request[PRINCIPAL] = principal
    return await handler(request)


# What is public or costly, the limit it counts against, and whether by user (else by
# client address).
_LIMITED = [(re.compile(r"^/verify/"), "verify", False),
            (re.compile(r"^/api/v1/feed/"), "feeds", False),
            (re.compile(r"^/api/v1/licenses/[^/]+/images/archive$"), "archives", True),
            (re.compile(r"^/reports(/scheduled/[^/]+)?$"), "reports", True),
            (re.compile(r"^(/api/v1)?/password/forgot$"), "password_links", False)]
# Limits that count only what changes something: looking at the form is free.
_POST_ONLY = frozenset({"password_links"})
_REPORTABLE = re.compile(r"^/api/v1/(licenses|certificates|issues)$")


@web.middleware
async def rate_limits(request: web.Request, handler: Handler) -> web.StreamResponse:
    """429 with Retry-After past a limit of rate_limits.*, counted for all processes."""
    name, by_user = _limit_of(request)
    if name is not None:
        principal = request.get(PRINCIPAL)
        who = f"user:{principal.user_id}" if by_user and principal is not None and \
            principal.user_id else f"address:{client_address(request)}"
        await request.app[SERVICES].limits.spend(name, who)
    return await handler(request)


def _limit_of(request: web.Request) -> tuple[str | None, bool]:
    if request.method == "GET" and _REPORTABLE.match(request.path):
        given = request.query.get("format")
        try:
            return ("reports", True) if wanted_report(request, given) is not None else \
                (None, False)
        except ValueError:
            return None, False  # an unknown format: the handler says so
    for pattern, name, by_user in _LIMITED:
        if pattern.match(request.path):
            if name in _POST_ONLY and request.method != "POST":
                return None, False
            return name, by_user
    return None, False


def _has_session_cookie(request: web.Request) -> bool:
    return session.ACCESS_COOKIE in request.cookies or session.REFRESH_COOKIE in request.cookies


async def response_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: request id, session cookies, and hardening headers."""
    if DRAINING in request.app and request.app[DRAINING].is_set():
        # The proxy's next request goes to a connection elsewhere. (The headers are made
        # before this hook runs: Connection is written here too.)
        response.force_close()
        response.headers["Connection"] = "close"
    response.headers.setdefault("X-Request-ID", request.get(REQUEST_ID, ""))
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if not is_api(request):
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'self'")
    if not request.path.startswith(STATIC_PREFIX):
        # Pages and answers are per user, and some carry one-time links: never cache them.
        response.headers.setdefault("Cache-Control", "no-store")
    await session.write_cookies(request, response)
