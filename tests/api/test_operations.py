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
        if found.get(("portal_outbox_depth", ())):
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
    assert found[("portal_outbox_oldest_due_age_seconds", ())] >= 0
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
