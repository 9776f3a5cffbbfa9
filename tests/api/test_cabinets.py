"""Cabinets through the API: create, read, change, move, list and page."""

from __future__ import annotations

from app.domain.audit import AuditFilter
from app.domain.roles import Role
from tests.world import World, unique


async def test_customer_admin_creates_a_child_and_sees_it_listed(world: World) -> None:
    admin = world.actors[Role.CUSTOMER_ADMIN]
    response = await world.client.post(
        "/api/v1/cabinets", headers=admin.headers,
        json={"name": "  Acme   Research ", "parent_id": world.own.id})
    assert response.status == 201
    created = await response.json()
    assert created["name"] == "Acme Research"
    assert created["kind"] == "customer"
    assert created["parent_id"] == world.own.id

    children = await (await world.client.get(f"/api/v1/cabinets/{world.own.id}/children",
                                             headers=admin.headers)).json()
    assert {c["id"] for c in children["items"]} == {world.child.id, created["id"]}


async def test_customer_admin_cannot_create_top_level_or_set_billing_ids(world: World) -> None:
    admin = world.actors[Role.CUSTOMER_ADMIN]
    top = await world.client.post("/api/v1/cabinets", headers=admin.headers,
                                  json={"name": "Escape"})
    assert top.status == 403
    billing = await world.client.post("/api/v1/cabinets", headers=admin.headers, json={
        "name": "Billing", "parent_id": world.own.id, "external_id": "CRM-1"})
    assert billing.status == 403
    assert (await billing.json())["errors"] == [
        {"field": "external_id", "message": "Only staff administrators set billing ids."}]


async def test_customer_list_shows_exactly_their_subtree(world: World) -> None:
    user = world.actors[Role.CUSTOMER_USER]
    listed = await (await world.client.get("/api/v1/cabinets", headers=user.headers)).json()
    assert {c["id"] for c in listed["items"]} == {world.own.id, world.child.id}
    assert listed["next_cursor"] is None


async def test_staff_list_pages_through_everything_without_gaps(world: World) -> None:
    staff = world.actors[Role.STAFF]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await (await world.client.get("/api/v1/cabinets", params=query,
                                             headers=staff.headers)).json()
        assert len(page["items"]) <= 2
        seen.extend(c["id"] for c in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # Other tests' cabinets may share the database: check the walk, and that ours are in it.
    assert len(seen) == len(set(seen)) >= 6
    assert pages == -(-len(seen) // 2)
    assert seen == sorted(seen)
    for cabinet in (world.vendor, world.parent, world.own, world.child, world.sibling,
                    world.foreign):
        assert cabinet.id in seen


async def test_bad_paging_parameters_are_400(world: World) -> None:
    staff = world.actors[Role.STAFF]
    for query in ({"limit": "0"}, {"limit": "201"}, {"limit": "many"}, {"cursor": "bogus"}):
        response = await world.client.get("/api/v1/cabinets", params=query,
                                          headers=staff.headers)
        assert response.status == 400, query
        body = await response.json()
        assert body["errors"][0]["field"] in ("limit", "cursor")


async def test_staff_admin_moves_a_subtree_and_the_access_rule_follows(world: World) -> None:
    admin = world.actors[Role.STAFF_ADMIN]
    user = world.actors[Role.CUSTOMER_USER]
    # Move `own` (with its child) under the foreign cabinet.
    response = await world.client.patch(f"/api/v1/cabinets/{world.own.id}",
                                        headers=admin.headers,
                                        json={"parent_id": world.foreign.id})
    assert response.status == 200
    assert (await response.json())["parent_id"] == world.foreign.id
    me = await (await world.client.get("/api/v1/me", headers=user.headers)).json()
    assert [a["id"] for a in me["cabinet"]["ancestors"]] == [world.foreign.id]
    # The customer still reaches its child, which moved along.
    child = await world.client.get(f"/api/v1/cabinets/{world.child.id}", headers=user.headers)
    assert child.status == 200
    # Back to the top level.
    response = await world.client.patch(f"/api/v1/cabinets/{world.own.id}",
                                        headers=admin.headers, json={"parent_id": None})
    assert (await response.json())["parent_id"] is None


async def test_a_cabinet_cannot_move_below_itself_or_under_another_kind(world: World) -> None:
    admin = world.actors[Role.STAFF_ADMIN]
    below = await world.client.patch(f"/api/v1/cabinets/{world.own.id}", headers=admin.headers,
                                     json={"parent_id": world.child.id})
    assert below.status == 422
    assert (await below.json())["errors"][0]["field"] == "parent_id"
    vendor = await world.client.patch(f"/api/v1/cabinets/{world.own.id}", headers=admin.headers,
                                      json={"parent_id": world.vendor.id})
    assert vendor.status == 422
    unchanged = await (await world.client.get(f"/api/v1/cabinets/{world.own.id}",
                                              headers=admin.headers)).json()
    assert unchanged["parent_id"] == world.parent.id


async def test_customer_admin_may_not_move_or_rebill(world: World) -> None:
    admin = world.actors[Role.CUSTOMER_ADMIN]
    for body in ({"parent_id": world.own.id}, {"external_id": "CRM-9"}):
        response = await world.client.patch(f"/api/v1/cabinets/{world.child.id}",
                                            headers=admin.headers, json=body)
        assert response.status == 403, body
    cabinet = await (await world.client.get(f"/api/v1/cabinets/{world.child.id}",
                                            headers=admin.headers)).json()
    assert cabinet["parent_id"] == world.own.id and cabinet["external_id"] is None


async def test_billing_ids_are_unique(world: World) -> None:
    admin = world.actors[Role.STAFF_ADMIN]
    external_id = unique("CRM")
    first = await world.client.post("/api/v1/cabinets", headers=admin.headers,
                                    json={"name": "First", "external_id": external_id})
    assert first.status == 201
    second = await world.client.post("/api/v1/cabinets", headers=admin.headers,
                                     json={"name": "Second", "external_id": external_id})
    assert second.status == 409
    assert (await second.json())["type"] == "/problems/conflict"


async def test_invalid_bodies_name_the_field(world: World) -> None:
    admin = world.actors[Role.STAFF_ADMIN]
    cases = [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "Ok", "kind": "reseller"}, "kind"),
        ({"name": "Ok", "is_admin": True}, "is_admin"),
        ({"name": 7}, "name"),
    ]
    for body, field in cases:
        response = await world.client.post("/api/v1/cabinets", headers=admin.headers, json=body)
        assert response.status == 422, body
        problem = await response.json()
        assert response.content_type == "application/problem+json"
        assert problem["type"] == "/problems/validation-error"
        assert field in [e["field"] for e in problem["errors"]], problem
    patch = await world.client.patch(f"/api/v1/cabinets/{world.own.id}", headers=admin.headers,
                                     json={"name": None})
    assert patch.status == 422


async def test_malformed_json_and_wrong_content_type(world: World) -> None:
    admin = world.actors[Role.STAFF_ADMIN]
    broken = await world.client.post("/api/v1/cabinets", data=b"{nope",
                                     headers={**admin.headers,
                                              "Content-Type": "application/json"})
    assert broken.status == 400
    assert (await broken.json())["type"] == "/problems/bad-request"
    form = await world.client.post("/api/v1/cabinets", data=b"name=x",
                                   headers={**admin.headers,
                                            "Content-Type": "application/x-www-form-urlencoded"})
    assert form.status == 415


async def test_changes_are_audited(world: World) -> None:
    from app.domain.access import Scope
    from app.domain.paging import PageRequest
    from app.web.keys import SERVICES

    admin = world.actors[Role.CUSTOMER_ADMIN]
    await world.client.patch(f"/api/v1/cabinets/{world.child.id}", headers=admin.headers,
                             json={"name": "Renamed Child"})
    async with world.client.app[SERVICES].storage.unit_of_work() as uow:
        entries = await uow.audit.list_visible(Scope.everything(), PageRequest(50),
                                       AuditFilter(object_id=world.child.id))
    last = entries[-1]
    assert last.action == "cabinet.updated"
    assert last.actor_id == admin.user_id
    assert last.details["changes"]["name"][1] == "Renamed Child"
