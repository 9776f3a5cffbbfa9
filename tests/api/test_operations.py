"""What operators watch: Prometheus metrics (never public by accident) and JSON logs."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from app.domain.licensing import DocumentKind
from app.domain.roles import Role
from app.web.app import create_app
from tests.api.test_schemathesis import sign_in
from tests.api.test_users import invite
from tests.live import free_port, live_portal
from tests.world import Client, ClientFactory, SettingsFor, build_world

TOKEN = "metrics-token-for-tests"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition: (name, sorted labels) -> value."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


async def scrape(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 200, await response.text()
    assert response.content_type == "text/plain"
    return samples(await response.text())


async def test_metrics_count_requests_by_route_and_report_each_part(
        aiohttp_client: ClientFactory, settings_for: SettingsFor, backend: str) -> None:
    client = await aiohttp_client(create_app(settings_for(
        backend, PORTAL_METRICS__TOKEN=TOKEN, PORTAL_METRICS__REFRESH_SECONDS="0.1",
        PORTAL_MAIL__OUTBOX_INTERVAL="0")))
    world = await build_world(client)
    refused = await client.get("/metrics")
    assert refused.status == 401 and "Bearer" in refused.headers["WWW-Authenticate"]
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer guess"})
    assert wrong.status == 401
    for _ in range(3):
        assert (await client.get("/healthz")).status == 200
    held = (await world.add_document(DocumentKind.LICENSE, world.own)).id
    user = world.actors[Role.CUSTOMER_USER].headers
    for _ in range(2):
        assert (await client.get(f"/api/v1/licenses/{held}", headers=user)).status == 200
    assert (await client.get("/api/v1/licenses/00000000-0000-7000-8000-000000000000",
                             headers=user)).status == 404
    # Invitations wait in the outbox (its worker is off here).
    for _ in range(2):
        await invite(world)
    for _ in range(50):
        found = await scrape(client)
        if found.get(("portal_outbox_depth", ()), 0) >= 2:
            break
        await asyncio.sleep(0.1)
    requests = "portal_http_requests_total"
    assert found[(requests, (("method", "GET"), ("route", "/healthz"), ("status", "200")))] == 3
    one = "/api/v1/licenses/{id}"
    assert found[(requests, (("method", "GET"), ("route", one), ("status", "200")))] == 2
    assert found[(requests, (("method", "GET"), ("route", one), ("status", "404")))] == 1
    assert found[("portal_http_request_duration_seconds_count",
                  (("method", "GET"), ("route", one)))] == 3
    assert found[("portal_outbox_depth", ())] >= 2
    assert found[("portal_outbox_oldest_age_seconds", ())] >= 0
    # Reported with the built-in helpdesk too (tests/e2e/test_helpdesk_sync.py: their values).
    assert ("portal_helpdesk_delivery_depth", ()) in found
    assert ("portal_helpdesk_delivered_total", ()) in found
    assert found[("portal_sse_streams_open", ())] == 0
    assert found[("portal_storage_pool_max", ())] >= 1
    assert ("portal_event_bus_published_total", ()) in found
    assert found[("portal_job_last_success_timestamp_seconds",
                  (("task", "outbox backlog"),))] > 0
    assert ("portal_pdf_workers", ()) in found


async def test_without_a_token_or_a_port_there_are_no_metrics(client: Client) -> None:
    assert (await client.get("/metrics")).status == 404


def test_metrics_on_a_port_of_their_own_and_logs_as_json(tmp_path: Path) -> None:
    port = free_port()
    with live_portal(tmp_path / "var", PORTAL_METRICS__PORT=str(port),
                     PORTAL_LOGGING__FORMAT="json", PORTAL_LOGGING__ACCESS_LOG="true",
                     PORTAL_WEB__PROXY_HOPS="1") as portal:
        token = sign_in(portal.url, "admin@acme.example", "demo-acme-admin")
        me = urllib.request.Request(f"{portal.url}/api/v1/me", headers={
            "Authorization": f"Bearer {token}", "X-Request-ID": "trace-from-proxy-1",
            "X-Forwarded-For": "198.51.100.7"})
        with urllib.request.urlopen(me, timeout=10) as answer:
            user_id = json.loads(answer.read())["user"]["id"]
        # Not on the portal's own port: only where the scraper looks.
        try:
            urllib.request.urlopen(f"{portal.url}/metrics", timeout=10)
            raise AssertionError("/metrics answered on the portal's port")
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            found = samples(answer.read().decode())
        assert found[("portal_http_requests_total", (("method", "GET"), ("route", "/api/v1/me"),
                                                     ("status", "200")))] == 1
        log_text = portal.log.read_text()
    lines = [json.loads(line) for line in log_text.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    [access] = [line for line in lines if line.get("request_id") == "trace-from-proxy-1"]
    assert access["principal"] == user_id and access["route"] == "/api/v1/me"
    assert access["status"] == 200 and access["method"] == "GET"
    assert access["client"] == "198.51.100.7" and access["duration_ms"] > 0
    assert token not in log_text


async def test_a_traced_request_is_a_server_span_with_its_sql_spans_and_request_id(
        aiohttp_client: ClientFactory, settings_for: SettingsFor, backend: str) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from app.tracing import start_tracing, stop_tracing

    settings = settings_for(backend, PORTAL_TRACING__ENABLED="true")
    exporter = InMemorySpanExporter()
    provider = start_tracing(settings.tracing, exporter)
    try:
        client = await aiohttp_client(create_app(settings))
        world = await build_world(client)
        held = await world.add_document(DocumentKind.LICENSE, world.own)
        exporter.clear()
        answer = await client.get(f"/api/v1/licenses/{held.id}",
                                  headers=world.actors[Role.CUSTOMER_USER].headers)
        assert answer.status == 200
        request_id = answer.headers["X-Request-ID"]
        spans = exporter.get_finished_spans()
    finally:
        stop_tracing(provider)
    [server] = [s for s in spans if s.kind is SpanKind.SERVER]
    assert server.name == "GET /api/v1/licenses/{id}"
    assert dict(server.attributes or {})["portal.request_id"] == request_id
    assert dict(server.attributes or {})["http.response.status_code"] == 200
    assert server.context is not None
    sql = [dict(s.attributes or {}) for s in spans if s.kind is SpanKind.CLIENT
           and s.parent is not None and s.parent.span_id == server.context.span_id]
    assert sql and all(a["db.system"] in ("sqlite", "postgresql") for a in sql)
    assert any("FROM licenses" in str(a["db.statement"]) for a in sql)
    # (Background jobs' statements are spans too, in traces of their own.)


async def test_the_statements_of_an_unsampled_request_make_no_spans() -> None:
    from collections.abc import Iterator
    from contextlib import contextmanager
    from typing import Any

    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, use_span

    from adapters.sql.tracing import TracedSession

    started: list[str] = []

    class Tracer:  # records which spans were started
        @contextmanager
        def start_as_current_span(self, name: str, **_: Any) -> Iterator[None]:
            started.append(name)
            yield

    class Statements:  # the session underneath: answers every statement
        dialect, for_update = "sqlite", ""

        async def fetch_one(self, sql: str, params: Any = None) -> dict[str, int]:
            return {"n": 1}

    session = TracedSession(Statements(), Tracer())  # type: ignore[arg-type]
    assert await session.fetch_one("SELECT 1") == {"n": 1}  # in no request: sampled alone
    unsampled = NonRecordingSpan(SpanContext(trace_id=1, span_id=2, is_remote=False,
                                             trace_flags=TraceFlags(TraceFlags.DEFAULT)))
    with use_span(unsampled):
        assert await session.fetch_one("SELECT 2") == {"n": 1}
    assert started == ["SELECT sqlite"]


def test_a_running_portal_sends_its_spans_over_otlp(tmp_path: Path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    received: list[ExportTraceServiceRequest] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/v1/traces":
                received.append(ExportTraceServiceRequest.FromString(body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    collector = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{collector.server_address[1]}/v1/traces"
        with live_portal(tmp_path / "var", PORTAL_TRACING__ENABLED="true",
                         PORTAL_TRACING__OTLP_ENDPOINT=endpoint) as portal:
            sign_in(portal.url, "admin@acme.example", "demo-acme-admin")
        # Stopping flushes what was batched.
    finally:
        collector.shutdown()
        collector.server_close()
    names = {span.name for request in received for spans in request.resource_spans
             for scope in spans.scope_spans for span in scope.spans}
    assert "POST /api/v1/jwt" in names, names
    services = {attribute.value.string_value for request in received
                for spans in request.resource_spans for attribute in spans.resource.attributes
                if attribute.key == "service.name"}
    assert services == {"license-portal"}
