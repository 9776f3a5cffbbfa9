"""Rate limits on what is public or costly, counted in storage: the verification page and
the webhooks per address, reports and zip archives per user; 429 with Retry-After past the
limit, a count shared by two portal processes on one PostgreSQL."""

from __future__ import annotations

import pytest

from app.domain.licensing import DocumentKind
from app.domain.roles import Role
from app.web.app import create_app
from tests.world import Client, ClientFactory, SettingsFor, World, build_world

LOW = {"PORTAL_RATE_LIMITS__VERIFY_PER_ADDRESS": "3",
       "PORTAL_RATE_LIMITS__FEEDS_PER_ADDRESS": "2",
       "PORTAL_RATE_LIMITS__REPORTS_PER_USER": "2",
       "PORTAL_RATE_LIMITS__ARCHIVES_PER_USER": "2",
       "PORTAL_RATE_LIMITS__PASSWORD_LINKS_PER_ADDRESS": "2",
       "PORTAL_RATE_LIMITS__WINDOW_SECONDS": "60"}


@pytest.fixture
async def limited(aiohttp_client: ClientFactory, settings_for: SettingsFor,
                  backend: str) -> World:
    return await build_world(await aiohttp_client(create_app(settings_for(backend, **LOW))))


async def statuses(client: Client, times: int, path: str, method: str = "GET",
                   **options: object) -> list[int]:
    found = []
    for _ in range(times):
        response = await client.request(method, path, **options)  # type: ignore[arg-type]
        await response.read()
        found.append(response.status)
        last = response
    if found[-1] == 429:
        assert 1 <= int(last.headers["Retry-After"]) <= 60
    return found


async def test_public_and_costly_paths_are_limited(limited: World) -> None:
    client = limited.client
    # By address (127.0.0.1, whose PostgreSQL count other tests may have begun): the
    # fourth within the window is over a limit of three, whatever came before.
    verify = await statuses(client, 4, "/verify/LIC-1999-000001")
    assert verify[-1] == 429
    feed = await statuses(client, 3, "/api/v1/feed/purchases", "POST", data=b"{}",
                          headers={"Content-Type": "application/json"})
    assert feed[-1] == 429
    assert (await client.post("/api/v1/feed/purchases", data=b"{}")).headers.get(
        "Retry-After")

    admin = limited.actors[Role.CUSTOMER_ADMIN].headers
    reports = await statuses(client, 3, "/api/v1/licenses?format=csv", headers=admin)
    assert reports == [200, 200, 429]
    problem = await (await client.get("/api/v1/licenses?format=csv", headers=admin)).json()
    assert problem["type"] == "/problems/too-many-requests" and "Try again in" in problem[
        "detail"]
    # The JSON list is not a report: never limited as one.
    assert await statuses(client, 3, "/api/v1/licenses", headers=admin) == [200, 200, 200]
    other = limited.actors[Role.STAFF].headers  # another user has a count of their own
    assert (await client.get("/api/v1/licenses?format=csv", headers=other)).status == 200

    # "Forgot your password?", by address: the API and the page share one count.
    forgot = await statuses(client, 3, "/api/v1/password/forgot", "POST",
                            json={"email": "someone@example.test"})
    assert forgot[-1] == 429
    assert (await client.get("/password/forgot")).status == 200  # looking is free

    license_ = await limited.add_document(DocumentKind.LICENSE, limited.own)
    archive = f"/api/v1/licenses/{license_.id}/images/archive?release=none"
    assert (await statuses(client, 3, archive, headers=admin))[-1] == 429


@pytest.mark.postgres
async def test_two_processes_share_one_count(aiohttp_client: ClientFactory,
                                             settings_for: SettingsFor) -> None:
    first = await build_world(await aiohttp_client(create_app(settings_for("postgres",
                                                                           **LOW))))
    second = await aiohttp_client(create_app(settings_for("postgres", **LOW)))
    admin = first.actors[Role.CUSTOMER_ADMIN].headers
    one = await first.client.get("/api/v1/licenses?format=csv", headers=admin)
    two = await second.get("/api/v1/licenses?format=csv", headers=admin)
    three = await second.get("/api/v1/licenses?format=csv", headers=admin)
    assert [one.status, two.status, three.status] == [200, 200, 429]
