"""The application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError

from app import __version__
from app.config import PROJECT_ROOT, Settings
from app.container import open_services
from app.domain.events import (
    IssueCommented,
    IssueOpened,
    IssueUpdated,
    MailQueued,
    NotificationsCreated,
)
from app.domain.users import SYSTEM
from app.services import Services
from app.services.background import repeat
from app.tracing import traced
from app.web import metrics
from app.web.api import (
    auth,
    cabinets,
    downloads,
    feeds,
    licensing,
    notifications,
    products,
    releases,
    support,
    system,
    users,
)
from app.web.api.common import client_address
from app.web.keys import (
    API_REFERENCE,
    DRAINING,
    HUB,
    OPENAPI,
    PRINCIPAL,
    REQUEST_ID,
    SERVICES,
    SETTINGS,
)
from app.web.metrics import route_of
from app.web.middlewares import (
    authentication,
    body_limits,
    errors,
    finish_left_answers,
    finish_short_answers,
    rate_limits,
    refuse_nul,
    request_ids,
    response_headers,
)
from app.web.openapi import build_document, route_table
from app.web.pages import audit as audit_pages
from app.web.pages import licensing as licensing_pages
from app.web.pages import notifications as notification_pages
from app.web.pages import organisations, public, signin
from app.web.pages import products as product_pages
from app.web.pages import reports as report_pages
from app.web.pages import support as support_pages
from app.web.pages.api_reference import reference
from app.web.pages.markup import code_spans, day, markdown, moment
from app.web.stream import NotificationHub
from ports.events import Heard

log = logging.getLogger(__name__)
TEMPLATES_DIR = PROJECT_ROOT / "templates"
STATIC_DIR = Path(__file__).parent / "static"
# Held notification batches are written when their event comes, and at least this often
# (one left by a process that stopped first); live streams look for what the event bus lost
# this often (one query a process).
BATCH_SECONDS = 30
SPREAD_DELAY_SECONDS = 1.0
CATCH_UP_SECONDS = 5
# Idle streams get a heartbeat, and stalled ones are cut, this often.
SWEEP_SECONDS = 5
API_MODULES = (auth, cabinets, users, products, releases, licensing, downloads, support,
               notifications, feeds, system)
ServicesFactory = Callable[[Settings], AbstractAsyncContextManager[Services]]

API_DESCRIPTION = (
    "REST API of the customer license portal. Authenticate with `POST /api/v1/jwt` and send "
    "the access token as `Authorization: Bearer <token>`. Errors are RFC 9457 problem details "
    "(`application/problem+json`). Lists take `limit` and `cursor` and return `next_cursor`."
)


def create_app(settings: Settings, services_factory: ServicesFactory = open_services,
               ) -> web.Application:
    app = web.Application(middlewares=[finish_short_answers, request_ids, errors, body_limits,
                                       refuse_nul, authentication, rate_limits],
                          client_max_size=settings.web.max_body_bytes)
    app[SETTINGS] = settings
    metrics.install(app, settings)
    if settings.tracing.enabled:
        app.middlewares.insert(0, traced)  # outermost: the span holds everything
    operations = [op for module in API_MODULES for op in module.api.operations]
    document = build_document(
        operations, title=f"{settings.web.brand_name} license portal API", version=__version__,
        description=API_DESCRIPTION)
    # The password policy is configuration; the document states the deployment's own.
    document["components"]["schemas"]["PasswordSetIn"]["properties"]["password"]["minLength"] = (
        settings.auth.password_min_length)
    app[OPENAPI] = document
    app[API_REFERENCE] = reference(document)
    app.router.add_routes(route_table(operations))
    for pages in (signin, organisations, licensing_pages, product_pages, support_pages,
                  report_pages, notification_pages, audit_pages, public):
        app.router.add_routes(pages.routes)
    app.router.add_static("/static", STATIC_DIR)
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
                               autoescape=jinja2.select_autoescape(default=True))
    env.filters["code_spans"] = code_spans
    env.filters["markdown"] = markdown
    env.filters["day"] = day
    env.filters["moment"] = moment

    app[HUB] = NotificationHub()
    app[DRAINING] = asyncio.Event()

    async def services_context(app: web.Application) -> AsyncIterator[None]:
        async with services_factory(settings) as services:
            app[SERVICES] = services
            metrics.observe(app, services)
            hub, notifications = app[HUB], services.notifications
            hub.follow(await notifications.position(), notifications.since,
                       notifications.position)
            leave = services.events.subscribe(hub.on_event)
            held = asyncio.Event()
            support_queued = asyncio.Event()

            async def wake(event: Heard) -> None:
                if isinstance(event, MailQueued):
                    services.outbox.wake.set()
                elif isinstance(event, IssueOpened | IssueUpdated | IssueCommented):
                    support_queued.set()  # what the helpdesk must get is queued with it
                elif isinstance(event, NotificationsCreated) and event.held:
                    # A moment later: the live streams are served first.
                    asyncio.get_running_loop().call_later(SPREAD_DELAY_SECONDS, held.set)

            leave_wake = services.events.subscribe(wake)
            tasks = [asyncio.create_task(_scan_forever(services, settings.catalog.scan_interval)),
                     asyncio.create_task(repeat("notification batches",
                                                notifications.spread_held, BATCH_SECONDS, held)),
                     asyncio.create_task(repeat("live streams", hub.check,
                                                CATCH_UP_SECONDS)),
                     asyncio.create_task(repeat("stream heartbeats", hub.sweep,
                                                SWEEP_SECONDS))]
            if settings.notifications.reminder_interval > 0:
                tasks.append(asyncio.create_task(
                    services.reminders.run_forever(settings.notifications.reminder_interval)))
            if services.helpdesk.external and settings.support.delivery_interval > 0:
                tasks.append(asyncio.create_task(services.helpdesk.deliver_forever(
                    settings.support.delivery_interval, support_queued)))
            if services.helpdesk.external and settings.support.reconcile_interval > 0:
                tasks.append(asyncio.create_task(services.helpdesk.reconcile_forever(
                    settings.support.reconcile_interval)))
            if settings.reports.schedule_interval > 0:
                tasks.append(asyncio.create_task(services.subscriptions.run_forever(
                    settings.reports.schedule_interval)))
            if metrics.enabled(settings):
                tasks.append(asyncio.create_task(repeat(
                    "outbox backlog", services.outbox.measure, settings.metrics.refresh_seconds)))
                if services.helpdesk.external:
                    tasks.append(asyncio.create_task(repeat(
                        "helpdesk backlog", services.helpdesk.measure,
                        settings.metrics.refresh_seconds)))
            if settings.mail.outbox_interval > 0:
                tasks.append(asyncio.create_task(
                    services.outbox.run_forever(settings.mail.outbox_interval)))
            try:
                yield
            finally:
                leave()
                leave_wake()
                # Stopping: each job ends after its round (a mail being sent is sent); one
                # still busy when the grace is over is cancelled.
                if tasks and app[DRAINING].is_set():
                    await asyncio.wait(tasks, timeout=settings.server.shutdown_grace_seconds)
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    app.cleanup_ctx.append(services_context)

    async def end_streams(app: web.Application) -> None:
        app[HUB].close_all()

    app.on_shutdown.append(end_streams)
    # After the services' context, so torn down before it: the answers of clients that left
    # end before the storage closes.
    app.cleanup_ctx.append(finish_left_answers)
    app.on_response_prepare.append(response_headers)
    return app


async def _scan_forever(services: Services, interval: int) -> None:
    """Look for new releases now and then; several processes may: a version registers once."""
    if interval <= 0:
        return

    async def scan() -> None:
        if added := await services.releases.scan_all(SYSTEM):
            log.info("release scan: %d new", len(added))

    await repeat("release scan", scan, interval)


class MalformedRequestFilter(logging.Filter):
    """aiohttp logs a request it cannot even parse (a NUL in a header, say) with a full
    traceback; an operator only needs one line, since the client already got a 400."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], HttpProcessingError):
            message = record.getMessage()
            record.msg, record.args = "%s: %s", (message, " ".join(str(record.exc_info[1]).split()))
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
        return True


def install_log_filters() -> None:
    logging.getLogger("aiohttp.server").addFilter(MalformedRequestFilter())


# One-time tokens travel in query strings (set-password links); they never reach the log.
_SECRET_QUERY = re.compile(r"\b(token)=[^&]*")


class AccessLogger(AbstractAccessLogger):
    """One line per request with its id, the user, and the time taken."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        principal = request.get(PRINCIPAL)
        who = principal.user_id if principal and principal.user_id else "-"
        path = _SECRET_QUERY.sub(r"\1=[redacted]", request.path_qs)
        request_id = request.get(REQUEST_ID, "-")
        self.logger.info(
            '%s "%s %s" %s %s %.1fms user=%s request_id=%s', request.remote, request.method,
            path, response.status, response.body_length, time * 1000, who, request_id,
            extra={"request_id": request_id, "principal": who, "method": request.method,
                   "route": route_of(request) if isinstance(request, web.Request) else "-",
                   "path": path, "status": response.status,
                   "duration_ms": round(time * 1000, 1), "bytes": response.body_length,
                   "client": client_address(request) if isinstance(request, web.Request)
                   else request.remote})

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
