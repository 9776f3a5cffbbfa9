"""The web foundation: problem details, request ids, health, limits and the OpenAPI document."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from aiohttp import web

from app.config import Settings
from app.domain.roles import Role
from app.web.app import create_app
from app.web.keys import OPENAPI, SERVICES
from tests.world import Client, ClientFactory, SettingsFor, World


async def test_unknown_api_route_is_a_problem(client: Client) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status == 404
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert body == {"type": "/problems/not-found", "title": "Not found", "status": 404,
                    "detail": "Nothing is at /api/v1/nothing-here.",
                    "instance": "/api/v1/nothing-here",
                    "request_id": response.headers["X-Request-ID"]}


async def test_wrong_method_is_405_with_allow(client: Client) -> None:
    response = await client.delete("/api/v1/jwt")
    assert response.status == 405
    assert "POST" in response.headers["Allow"]
    assert (await response.json())["type"] == "/problems/method-not-allowed"


async def test_request_id_comes_from_the_own_proxy_or_is_made(
        aiohttp_client: ClientFactory, settings_for: SettingsFor, client: Client) -> None:
    # Straight from a client: its own id is not taken (it could forge another's).
    direct = await client.get("/healthz", headers={"X-Request-ID": "trace-1234-abcd"})
    assert direct.headers["X-Request-ID"] != "trace-1234-abcd"
    assert len(direct.headers["X-Request-ID"]) == 32
    proxied = await aiohttp_client(create_app(settings_for(PORTAL_WEB__PROXY_HOPS="1")))
    given = await proxied.get("/healthz", headers={"X-Request-ID": "trace-1234-abcd"})
    assert given.headers["X-Request-ID"] == "trace-1234-abcd"
    made = await proxied.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["X-Request-ID"] != "bad id with spaces"
    assert len(made.headers["X-Request-ID"]) == 32
    # A proxy says the client came over https: the session cookies are then Secure.
    login = await proxied.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in login.headers["Set-Cookie"]
    assert "Secure" not in (await client.get("/login", headers={
        "X-Forwarded-Proto": "https"})).headers["Set-Cookie"]
    # From an address that is not one of the trusted proxies, none of it is believed.
    elsewhere = await aiohttp_client(create_app(settings_for(
        PORTAL_WEB__PROXY_HOPS="1", PORTAL_WEB__TRUSTED_PROXIES="10.0.0.0/8")))
    other = await elsewhere.get("/login", headers={"X-Request-ID": "trace-1234-abcd",
                                                   "X-Forwarded-Proto": "https"})
    assert other.headers["X-Request-ID"] != "trace-1234-abcd"
    assert "Secure" not in other.headers["Set-Cookie"]


async def test_health_and_readiness(client: Client) -> None:
    assert await (await client.get("/healthz")).json() == {"status": "ok", "checks": {}}
    ready = await client.get("/readyz")
    assert await ready.json() == {"status": "ok", "checks": {"storage": "ok"}}


async def test_storage_down_gives_503_and_a_log_line(world: World,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    storage = world.client.app[SERVICES].storage
    await storage.close()  # type: ignore[attr-defined]
    try:
        with caplog.at_level(logging.ERROR):
            ready = await world.client.get("/readyz")
            assert ready.status == 503
            assert (await ready.json())["checks"] == {"storage": "unavailable"}
            response = await world.client.get(
                "/api/v1/cabinets", headers=world.actors[Role.STAFF].headers)
            assert response.status == 503
            body = await response.json()
            assert body["type"] == "/problems/service-unavailable"
            assert response.headers["Retry-After"] == "5"
        assert any("storage unavailable" in r.getMessage() or "not ready" in r.getMessage()
                   for r in caplog.records)
    finally:
        await storage.open()  # type: ignore[attr-defined]


async def test_unexpected_errors_are_500_problems_without_a_traceback(
        aiohttp_client: ClientFactory, settings: Settings,
        caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(settings)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    app.router.add_get("/api/v1/boom", boom)
    client = await aiohttp_client(app)
    with caplog.at_level(logging.ERROR):
        response = await client.get("/api/v1/boom")
    assert response.status == 500
    text = await response.text()
    assert "secret internals" not in text and "Traceback" not in text
    assert (await response.json())["type"] == "/problems/internal-error"
    assert any("unhandled error" in r.getMessage() for r in caplog.records)


async def test_oversized_bodies_are_413(aiohttp_client: ClientFactory,
                                        settings_for: SettingsFor) -> None:
    client = await aiohttp_client(create_app(settings_for(
        "sqlite", PORTAL_WEB__MAX_BODY_BYTES="2048")))
    response = await client.post("/api/v1/jwt", data=b"{" + b" " * 4096 + b"}",
                                 headers={"Content-Type": "application/json"})
    assert response.status == 413
    assert (await response.json())["type"] == "/problems/payload-too-large"


async def test_openapi_document_matches_the_route_table(client: Client) -> None:
    served = await (await client.get("/api/v1/openapi.json")).json()
    assert served["openapi"] == "3.1.0"
    assert served == client.app[OPENAPI]
    documented = {(method.upper(), path) for path, ops in served["paths"].items()
                  for method in ops}
    routed = set()
    for resource in client.app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter")
        if path is None or not path.startswith(("/api/", "/.well-known/", "/healthz", "/readyz")):
            continue
        for route in resource:
            if route.method != "HEAD":
                routed.add((route.method, path))
    assert documented == routed
    # The brief's paths exist exactly.
    for method, path in [("POST", "/api/v1/jwt"), ("POST", "/api/v1/jwt/refresh"),
                         ("GET", "/api/v1/me"), ("POST", "/api/v1/cabinets"),
                         ("GET", "/api/v1/cabinets/{id}"), ("PATCH", "/api/v1/cabinets/{id}")]:
        assert (method, path) in documented


async def test_every_schema_reference_resolves(client: Client) -> None:
    document = client.app[OPENAPI]
    schemas = document["components"]["schemas"]
    refs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in schemas, ref


async def test_api_docs_and_problem_pages_render(client: Client) -> None:
    docs = await client.get("/docs/api")
    html = await docs.text()
    assert docs.status == 200
    assert "/api/v1/cabinets/{id}/users/{user_id}" in html
    assert "CabinetCreate" in html
    # Grouped by capability with a table of contents; the real types; an example a body.
    assert 'href="#group-support-requests"' in html and 'id="create_token"' in html
    revoke = html[html.index('id="revoke_token"'):]
    revoke = revoke[:revoke.index("</section>")]
    assert "<code>refresh_token</code></td><td>string or null</td>" in revoke
    token = html[html.index('id="create_token"'):]
    token = token[:token.index("</section>")]
    assert "Example response" in token and "&#34;token_type&#34;: &#34;Bearer&#34;" in token
    assert "one of “customer_user”, “customer_admin”, “staff”, “staff_admin”" in html
    problems = await (await client.get("/problems")).text()
    assert "/problems/validation-error" in problems


async def test_pages_carry_hardening_headers(client: Client) -> None:
    response = await client.get("/login")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_a_configured_signing_key_file_signs_the_tokens(
        aiohttp_client: ClientFactory, settings_for: SettingsFor, tmp_path: Path) -> None:
    import json

    from app.container import write_new_signing_key

    key_file = tmp_path / "production.jwk"
    write_new_signing_key(key_file)
    client = await aiohttp_client(create_app(settings_for(
        "sqlite", PORTAL_AUTH__SIGNING_KEY_FILE=str(key_file))))
    jwks = await (await client.get("/.well-known/jwks.json")).json()
    assert [k["kid"] for k in jwks["keys"]] == [json.loads(key_file.read_text())["kid"]]
    assert not (settings_for().keys_dir / "token-signing.jwk").exists()


async def test_an_unreadable_signing_key_stops_start_up(settings_for: SettingsFor,
                                                        tmp_path: Path) -> None:
    from app.container import StartupError, open_services

    bad = tmp_path / "bad.jwk"
    bad.write_text("not a key")
    with pytest.raises(StartupError, match=r"signing key: .* holds no readable key"):
        async with open_services(settings_for("sqlite", PORTAL_AUTH__SIGNING_KEY_FILE=str(bad))):
            pass


async def test_nul_characters_are_refused_before_any_database_sees_them(world: World) -> None:
    admin = world.actors[Role.STAFF_ADMIN].headers
    for path in ("/api/v1/cabinets/%00", "/api/v1/cabinets?cursor=%00x",
                 "/api/v1/products/a%00b"):
        response = await world.client.get(path, headers=admin)
        assert response.status == 400, path
        assert (await response.json())["type"] == "/problems/bad-request"
    for body, field in [({"name": "Acme\x00"}, "name"),
                        ({"name": "Ok", "external_id": "CRM\x00"}, "external_id")]:
        response = await world.client.post("/api/v1/cabinets", headers=admin, json=body)
        assert response.status == 422, body
        assert (await response.json())["errors"][0]["field"] == field
    nested = await world.client.patch(f"/api/v1/products/{world.product.id}", headers=admin,
                                      json={"parameters": {"editions": ["a", "b\x00"]}})
    assert nested.status == 422
    assert (await nested.json())["errors"][0]["field"] == "parameters.editions.1"
