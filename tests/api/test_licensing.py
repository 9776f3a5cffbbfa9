"""Licenses and certificates through the API: lists, filters, details and transfers."""

from __future__ import annotations

from datetime import date

from app.domain.events import DocumentTransferred, NotificationsCreated
from app.domain.licensing import DocumentKind
from app.domain.roles import Role
from app.web.keys import SERVICES
from ports.events import Heard
from tests.world import World


async def listed(world: World, role: Role, plural: str = "licenses", **params: str) -> list[str]:
    response = await world.client.get(f"/api/v1/{plural}", params={"limit": "200", **params},
                                      headers=world.actors[role].headers)
    assert response.status == 200, await response.text()
    return [item["number"] for item in (await response.json())["items"]]


async def test_customers_see_what_their_subtree_holds(world: World) -> None:
    own = await world.add_document(DocumentKind.LICENSE, world.own)
    child = await world.add_document(DocumentKind.LICENSE, world.child)
    sibling = await world.add_document(DocumentKind.LICENSE, world.sibling)
    cert = await world.add_document(DocumentKind.CERTIFICATE, world.own)
    seen = await listed(world, Role.CUSTOMER_USER)
    assert set(seen) == {own.number, child.number}
    assert await listed(world, Role.CUSTOMER_USER, "certificates") == [cert.number]
    staff = await listed(world, Role.STAFF, cabinet_id=world.parent.id)
    assert {own.number, child.number, sibling.number} <= set(staff)
    narrowed = await listed(world, Role.CUSTOMER_ADMIN, cabinet_id=world.child.id)
    assert narrowed == [child.number]
    hidden = await world.client.get("/api/v1/licenses", params={"cabinet_id": world.sibling.id},
                                    headers=world.actors[Role.CUSTOMER_ADMIN].headers)
    assert hidden.status == 404


async def test_filters_by_status_product_and_expiry(world: World) -> None:
    today = date.today()
    active = await world.add_document(DocumentKind.LICENSE, world.own, valid_to=date(2099, 1, 1))
    soon = await world.add_document(DocumentKind.LICENSE, world.own,
                                    valid_to=date(today.year + 1, 1, 1))
    expired = await world.add_document(DocumentKind.LICENSE, world.own,
                                       valid_to=date(2026, 1, 31))
    revoked = await world.add_document(DocumentKind.LICENSE, world.own, revoked=True)
    perpetual = await world.add_document(DocumentKind.LICENSE, world.own, valid_to=None)
    user = Role.CUSTOMER_USER
    assert set(await listed(world, user, status="active")) == {
        active.number, soon.number, perpetual.number}
    assert await listed(world, user, status="expired") == [expired.number]
    assert await listed(world, user, status="revoked") == [revoked.number]
    assert set(await listed(world, user, expires_before=f"{today.year + 2}-01-01")) == {
        soon.number, expired.number}
    assert len(await listed(world, user, product=world.product.code)) == 5
    assert len(await listed(world, user, product=world.product.id)) == 5
    bad = await world.client.get("/api/v1/licenses", params={"product": "nope"},
                                 headers=world.actors[user].headers)
    assert bad.status == 400
    assert (await bad.json())["errors"][0]["field"] == "product"
    for params in ({"status": "lost"}, {"expires_before": "soon"}, {"format": "docx"}):
        response = await world.client.get("/api/v1/licenses", params=params,
                                          headers=world.actors[user].headers)
        assert response.status == 400, params


async def test_a_license_shows_product_owner_status_and_days_left(world: World) -> None:
    license_ = await world.add_document(DocumentKind.LICENSE, world.own)
    body = await (await world.client.get(f"/api/v1/licenses/{license_.id}",
                                         headers=world.actors[Role.CUSTOMER_USER].headers)).json()
    assert body["number"] == license_.number and body["status"] == "active"
    assert body["product"] == {"id": world.product.id, "code": world.product.code,
                               "name": "DB Guard"}
    assert body["cabinet"] == {"id": world.own.id, "name": world.own.name}
    assert body["edition"] == "Enterprise" and body["seats"] == 50
    assert body["days_left"] == (date(2099, 12, 31) - date.today()).days
    assert body["transfers"] == []
    wrong_kind = await world.client.get(f"/api/v1/certificates/{license_.id}",
                                        headers=world.actors[Role.CUSTOMER_USER].headers)
    assert wrong_kind.status == 404


async def test_customer_admin_hands_a_license_down_and_both_sides_hear_of_it(
        world: World) -> None:
    events: list[Heard] = []

    async def collect(event: Heard) -> None:
        events.append(event)

    world.client.app[SERVICES].events.subscribe(collect)
    license_ = await world.add_document(DocumentKind.LICENSE, world.own)
    admin = world.actors[Role.CUSTOMER_ADMIN]
    moved = await world.client.post(f"/api/v1/licenses/{license_.id}/transfer",
                                    headers=admin.headers, json={"cabinet_id": world.child.id})
    assert moved.status == 200
    body = await moved.json()
    assert body["cabinet"]["id"] == world.child.id
    assert [(t["from_cabinet_id"], t["to_cabinet_id"], t["by"]) for t in body["transfers"]] == [
        (world.own.id, world.child.id, admin.email)]
    [event] = [e for e in events if isinstance(e, DocumentTransferred)]
    assert (event.from_cabinet_id, event.to_cabinet_id) == (world.own.id, world.child.id)
    assert event.number == license_.number
    # Both sides hear of it: the users of the giving and of the receiving cabinet.
    [created] = [e for e in events if isinstance(e, NotificationsCreated)]
    told = set(created.batch.users)
    assert admin.user_id in told and world.actors[Role.CUSTOMER_USER].user_id in told
    mine = await (await world.client.get("/api/v1/notifications",
                                         headers=admin.headers)).json()
    assert mine["items"][0]["kind"] == "license.transferred"
    assert mine["items"][0]["title"] == f"{license_.number} moved to {world.child.name}"


async def test_transfers_only_go_down_the_tree(world: World) -> None:
    admin = world.actors[Role.CUSTOMER_ADMIN]
    certificate = await world.add_document(DocumentKind.CERTIFICATE, world.child)
    path = f"/api/v1/certificates/{certificate.id}/transfer"
    # Up to the owner's parent (own): inside the admin's reach, but not below the owner.
    up = await world.client.post(path, headers=admin.headers, json={"cabinet_id": world.own.id})
    assert up.status == 422
    assert (await up.json())["errors"][0]["field"] == "cabinet_id"
    same = await world.client.post(path, headers=admin.headers,
                                   json={"cabinet_id": world.child.id})
    assert same.status == 422
    outside = await world.client.post(path, headers=admin.headers,
                                      json={"cabinet_id": world.sibling.id})
    assert outside.status == 404
    to_vendor = await world.client.post(path, headers=world.actors[Role.STAFF_ADMIN].headers,
                                        json={"cabinet_id": world.vendor.id})
    assert to_vendor.status == 422
    revoked = await world.add_document(DocumentKind.LICENSE, world.own, revoked=True)
    frozen = await world.client.post(f"/api/v1/licenses/{revoked.id}/transfer",
                                     headers=admin.headers, json={"cabinet_id": world.child.id})
    assert frozen.status == 422
    unchanged = await (await world.client.get(f"/api/v1/certificates/{certificate.id}",
                                              headers=admin.headers)).json()
    assert unchanged["cabinet"]["id"] == world.child.id and unchanged["transfers"] == []
