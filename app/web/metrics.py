"""Prometheus metrics of this process: its HTTP requests by route template, and what its
parts report (`stats()`): live streams, the outbox, the helpdesk's deliveries, PDF workers,
the storage pool, the event bus and the background jobs. Each process serves its own;
Prometheus scrapes each.

Never public by accident: on the portal's port only with `metrics.token`, or on a port of
their own (`metrics.port`) that only the scraper reaches."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from app.config import Settings
from app.services import Services
from app.services.background import JOBS
from app.web.keys import HUB, SETTINGS
from ports.system import Observed

log = logging.getLogger(__name__)
# Request durations: from a cached read to a large report.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Each part's figures as metrics: (name, counter or gauge, help). A figure a part does not
# report is left out; a counter's name gets `_total` from the exposition.
FIGURES: dict[str, dict[str, tuple[str, str, str]]] = {
    "streams": {
        "open_streams": ("portal_sse_streams_open", "gauge", "Live notification streams open."),
        "sent": ("portal_sse_events_sent", "counter", "Notifications handed to live streams."),
        "dropped": ("portal_sse_streams_dropped", "counter",
                    "Streams cut because their client stopped reading."),
        "catch_up_reads": ("portal_sse_catch_up_reads", "counter",
                           "Reads of storage for notifications the event bus did not bring."),
    },
    "outbox": {
        "waiting": ("portal_outbox_depth", "gauge", "E-mails waiting to be sent (all processes)."),
        "oldest_age_seconds": ("portal_outbox_oldest_age_seconds", "gauge",
                               "How long the oldest waiting e-mail has waited (retries "
                               "included)."),
        "sent": ("portal_outbox_sent", "counter", "E-mails this process sent."),
        "failed": ("portal_outbox_failed", "counter", "E-mails this process gave up on."),
        "retried": ("portal_outbox_retried", "counter",
                    "E-mails this process will try again later."),
    },
    "helpdesk": {
        "waiting": ("portal_helpdesk_delivery_depth", "gauge",
                    "Requests, comments and files waiting to reach the helpdesk (all processes)."),
        "oldest_age_seconds": ("portal_helpdesk_delivery_oldest_age_seconds", "gauge",
                               "How long the oldest waiting delivery has waited (retries "
                               "included)."),
        "delivered": ("portal_helpdesk_delivered", "counter",
                      "Deliveries this process handed to the helpdesk."),
        "failed": ("portal_helpdesk_delivery_failed", "counter",
                   "Deliveries this process gave up on."),
        "retried": ("portal_helpdesk_delivery_retried", "counter",
                    "Deliveries this process will try again later."),
    },
    "pdf": {
        "workers": ("portal_pdf_workers", "gauge", "PDF worker processes at most."),
        "busy": ("portal_pdf_busy", "gauge", "PDF workers rendering now."),
        "queued": ("portal_pdf_queued", "gauge", "PDFs waiting for a worker."),
        "rendered": ("portal_pdf_renders", "counter", "PDFs rendered."),
        "render_seconds": ("portal_pdf_render_seconds", "counter",
                           "Time spent rendering PDFs (with `renders`: the mean)."),
    },
    "storage": {
        "pool_size": ("portal_storage_pool_size", "gauge", "Storage connections open."),
        "pool_in_use": ("portal_storage_pool_in_use", "gauge", "Storage connections in use."),
        "pool_max": ("portal_storage_pool_max", "gauge", "Storage connections at most."),
        "pool_waits": ("portal_storage_pool_waits", "counter",
                       "Units of work that waited for a free connection."),
    },
    "event_bus": {
        "published": ("portal_event_bus_published", "counter", "Events published."),
        "publish_failures": ("portal_event_bus_publish_failures", "counter",
                             "Events the bus could not publish (Redis unavailable)."),
        "dropped": ("portal_event_bus_dropped", "counter",
                    "Events dropped while Redis was away (stored first: streams catch up)."),
        "waiting": ("portal_event_bus_waiting", "gauge", "Events waiting for Redis."),
    },
}


class PortalMetrics:
    """The registry of one portal process: its requests, and its parts' figures."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "portal_http_requests", "HTTP requests answered, by route template, method and "
            "status.", ["route", "method", "status"], registry=self.registry)
        self.duration = Histogram(
            "portal_http_request_duration_seconds", "Time to answer, by route template and "
            "method (a live stream: how long it stayed open).", ["route", "method"],
            buckets=BUCKETS, registry=self.registry)
        self.parts: dict[str, Observed] = {}
        self.registry.register(_Parts(self.parts))

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))


class _Parts(Collector):
    def __init__(self, parts: dict[str, Observed]) -> None:
        self._parts = parts

    def collect(self) -> Iterator[Metric]:
        for part, figures in FIGURES.items():
            source = self._parts.get(part)
            if source is None:
                continue
            stats = source.stats()
            for key, (name, kind, text) in figures.items():
                if key in stats:
                    family = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)
                    yield family(name, text, value=stats[key])
        yield from _jobs()


def _jobs() -> Iterator[Metric]:
    # Labelled `task`, not `job`: Prometheus gives every series the scrape's `job`.
    success = GaugeMetricFamily("portal_job_last_success_timestamp_seconds",
                                "When each background job last succeeded (0: not yet).",
                                labels=["task"])
    duration = GaugeMetricFamily("portal_job_last_duration_seconds",
                                 "How long each background job's last round took.",
                                 labels=["task"])
    failures = CounterMetricFamily("portal_job_failures", "Rounds of each background job "
                                   "that failed.", labels=["task"])
    for name, record in sorted(JOBS.items()):
        success.add_metric([name], record.last_success)
        duration.add_metric([name], record.last_duration)
        failures.add_metric([name], record.failures)
    yield from (success, duration, failures)


def route_of(request: web.Request) -> str:
    """The route's template (`/api/v1/licenses/{id}`), never the path: one series per route
    however many ids there are."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


async def answered(request: web.Request, handler: Handler,
                   done: Callable[[int], None]) -> web.StreamResponse:
    """The handler's answer; then `done(status)`, whatever happened (an error: 500)."""
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        done(status)


@web.middleware
async def measured(request: web.Request, handler: Handler) -> web.StreamResponse:
    metrics = request.app[METRICS]
    started = time.monotonic()

    def count(status: int) -> None:
        route = route_of(request)
        metrics.requests.labels(route, request.method, str(status)).inc()
        metrics.duration.labels(route, request.method).observe(time.monotonic() - started)
    return await answered(request, handler, count)


def _allowed(request: web.Request, token: str) -> bool:
    if not token:
        return True
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return hmac.compare_digest(given.encode(), token.encode())


METRICS = web.AppKey("metrics", PortalMetrics)


async def serve_metrics(request: web.Request) -> web.Response:
    """GET /metrics; 401 without the token (where one is set)."""
    if not _allowed(request, request.app[SETTINGS].metrics.token):
        # Answered, not raised: a scraper wants a plain 401, not the sign-in page.
        return web.Response(status=401, text="metrics need their bearer token\n",
                            headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    return web.Response(body=request.app[METRICS].exposition(), headers={
        "Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})


def enabled(settings: Settings) -> bool:
    """A token, or a port of their own: otherwise there is no /metrics at all (404)."""
    return bool(settings.metrics.token or settings.metrics.port)


def install(app: web.Application, settings: Settings) -> None:
    """Measure every request; serve /metrics on the portal's port (token) or its own."""
    if not enabled(settings):
        return
    app[METRICS] = PortalMetrics()
    app.middlewares.insert(0, measured)
    if settings.metrics.port == 0:
        app.router.add_get("/metrics", serve_metrics)
    else:
        app.cleanup_ctx.append(_own_port)


async def _own_port(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    side = web.Application()
    side[SETTINGS], side[METRICS] = settings, app[METRICS]
    side.router.add_get("/metrics", serve_metrics)
    runner = web.AppRunner(side, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.metrics.host, settings.metrics.port)
    await site.start()
    log.info("metrics on http://%s:%s/metrics", settings.metrics.host, settings.metrics.port)
    try:
        yield
    finally:
        await runner.cleanup()


def observe(app: web.Application, services: Services) -> None:
    """The open services' parts report their figures from now on."""
    if METRICS in app:
        app[METRICS].parts.update(services.observed)
        app[METRICS].parts.update(streams=app[HUB], outbox=services.outbox,
                                 helpdesk=services.helpdesk)
