"""OpenTelemetry traces, off unless `tracing.enabled`: a server span for each request, with
its route, status and request id (continuing the caller's trace from `traceparent`), and a
child span for each SQL statement (adapters/sql/tracing.py), sent over OTLP/HTTP.

The server spans are made here, not by opentelemetry-instrumentation-aiohttp-server: that
package subclasses web.Application, which aiohttp 3.14 deprecates (a warning, an error in
this project's tests)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from app.config import TracingSettings

_tracer: Any = None  # while traces are on


def start_tracing(settings: TracingSettings, exporter: Any = None) -> Any:
    """Before the app is made. `exporter`: where spans go (tests: in memory, at once);
    default OTLP/HTTP to `otlp_endpoint`, in batches. The provider, to shut down at exit;
    None when traces are off."""
    global _tracer
    if not settings.enabled:
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio

    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}),
                              sampler=ParentBasedTraceIdRatio(settings.sample_ratio))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
            endpoint=settings.otlp_endpoint, timeout=10)))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    from app.container import trace_sql  # the container alone reaches into adapters

    _tracer = provider.get_tracer("portal.web")
    trace_sql(provider.get_tracer("portal.sql"))
    return provider


def stop_tracing(provider: Any) -> None:
    global _tracer
    if provider is None:
        return
    from app.container import trace_sql

    trace_sql(None)
    _tracer = None
    provider.shutdown()


@web.middleware
async def traced(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The request's server span (the outermost middleware, while traces are on)."""
    if _tracer is None:
        return await handler(request)
    from opentelemetry.propagate import extract
    from opentelemetry.trace import SpanKind, Status, StatusCode

    from app.web.metrics import answered, route_of

    route = route_of(request)
    with _tracer.start_as_current_span(
            f"{request.method} {route}", context=extract(request.headers), kind=SpanKind.SERVER,
            attributes={"http.request.method": request.method, "http.route": route,
                        "url.path": request.path, "client.address": request.remote or ""},
            record_exception=False, set_status_on_exception=False) as span:
        def finish(status: int) -> None:
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
        return await answered(request, handler, finish)


def tag_request(request_id: str) -> None:
    """The request's id on its server span, so that a trace and the logs meet."""
    if _tracer is not None:
        from opentelemetry import trace

        trace.get_current_span().set_attribute("portal.request_id", request_id)
