"""Every endpoint x every role x every relation of the target to the caller's cabinet.

One table drives it: a row per endpoint, with the status each role expects for a target in
its own cabinet, a child, the parent, a sibling and a foreign cabinet. A later endpoint
joins by adding a row. Each row runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from app.domain.roles import Role
from tests.world import World, email, unique

RELATIONS = ("own", "child", "parent", "sibling", "foreign")
ANONYMOUS = "anonymous"
Expect = dict[str, int]


def seen(ok: int) -> Expect:
    """A customer reaches its own cabinet and what is below it; outside that is 404."""
    return {"own": ok, "child": ok, "parent": 404, "sibling": 404, "foreign": 404}


def everywhere(status: int) -> Expect:
    return dict.fromkeys(RELATIONS, status)


def managed_below(ok: int) -> Expect:
    """A customer admin may act on cabinets below their own, not on their own."""
    return {"own": 403, "child": ok, "parent": 404, "sibling": 404, "foreign": 404}


def forbidden_in_reach() -> Expect:
    return seen(403)


PathFactory = Callable[[World, str], Awaitable[str]]


async def cabinet_path(world: World, relation: str) -> str:
    return f"/api/v1/cabinets/{world.cabinet(relation).id}"


def under_cabinet(suffix: str) -> PathFactory:
    async def path(world: World, relation: str) -> str:
        return f"/api/v1/cabinets/{world.cabinet(relation).id}{suffix}"
    return path


async def fresh_user_path(world: World, relation: str) -> str:
    cabinet = world.cabinet(relation)
    user_id = await world.add_user(cabinet)
    return f"/api/v1/cabinets/{cabinet.id}/users/{user_id}"


async def cabinets_root(world: World, relation: str) -> str:
    return "/api/v1/cabinets"


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    path: PathFactory
    expect: dict[str, Expect]
    body: Callable[[World, str], Any] | None = None


ROWS = [
    Row("get cabinet", "GET", cabinet_path, {
        "customer_user": seen(200), "customer_admin": seen(200),
        "staff": everywhere(200), "staff_admin": everywhere(200)}),
    Row("list children", "GET", under_cabinet("/children"), {
        "customer_user": seen(200), "customer_admin": seen(200),
        "staff": everywhere(200), "staff_admin": everywhere(200)}),
    Row("rename cabinet", "PATCH", cabinet_path, {
        "customer_user": forbidden_in_reach(), "customer_admin": managed_below(200),
        "staff": everywhere(403), "staff_admin": everywhere(200)},
        body=lambda world, relation: {"name": unique("renamed")}),
    Row("create child cabinet", "POST", cabinets_root, {
        "customer_user": forbidden_in_reach(), "customer_admin": seen(201),
        "staff": everywhere(403), "staff_admin": everywhere(201)},
        body=lambda world, relation: {"name": unique("new"),
                                      "parent_id": world.cabinet(relation).id}),
    Row("list users", "GET", under_cabinet("/users"), {
        "customer_user": seen(200), "customer_admin": seen(200),
        "staff": everywhere(200), "staff_admin": everywhere(200)}),
    Row("add user", "POST", under_cabinet("/users"), {
        "customer_user": forbidden_in_reach(), "customer_admin": seen(201),
        "staff": everywhere(403), "staff_admin": everywhere(201)},
        body=lambda world, relation: {"email": email("new"), "role": "customer_user"}),
    Row("change user", "PATCH", fresh_user_path, {
        "customer_user": forbidden_in_reach(), "customer_admin": seen(200),
        "staff": everywhere(403), "staff_admin": everywhere(200)},
        body=lambda world, relation: {"name": "Changed Name"}),
    Row("delete user", "DELETE", fresh_user_path, {
        "customer_user": forbidden_in_reach(), "customer_admin": seen(204),
        "staff": everywhere(403), "staff_admin": everywhere(204)}),
]


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
async def test_authorization_matrix(backend_world: World, row: Row) -> None:
    world = backend_world
    mismatches = []
    for who in [*(r.value for r in Role), ANONYMOUS]:
        for relation in RELATIONS:
            expected = 401 if who == ANONYMOUS else row.expect[who][relation]
            headers = {} if who == ANONYMOUS else world.actors[Role(who)].headers
            path = await row.path(world, relation)
            body = row.body(world, relation) if row.body else None
            response = await world.client.request(row.method, path, json=body, headers=headers)
            payload = await response.read()
            if response.status != expected:
                mismatches.append(f"{who:>15} on {relation:<8} expected {expected}, "
                                  f"got {response.status}: {payload[:160]!r}")
            elif response.status >= 400:
                assert response.content_type == "application/problem+json", (who, relation)
    assert not mismatches, f"{row.name} ({row.method}):\n" + "\n".join(mismatches)


async def test_matrix_covers_every_cabinet_scoped_endpoint(backend_world: World) -> None:
    """A new endpoint under /api/v1/cabinets must get a row here."""
    from app.web.keys import OPENAPI

    document = backend_world.client.app[OPENAPI]
    covered = {("GET", "/api/v1/cabinets/{id}"), ("GET", "/api/v1/cabinets/{id}/children"),
               ("PATCH", "/api/v1/cabinets/{id}"), ("POST", "/api/v1/cabinets"),
               ("GET", "/api/v1/cabinets/{id}/users"), ("POST", "/api/v1/cabinets/{id}/users"),
               ("PATCH", "/api/v1/cabinets/{id}/users/{user_id}"),
               ("DELETE", "/api/v1/cabinets/{id}/users/{user_id}"),
               ("GET", "/api/v1/cabinets")}
    scoped = {(method.upper(), path) for path, ops in document["paths"].items()
              for method in ops if path.startswith("/api/v1/cabinets")}
    assert scoped == covered
