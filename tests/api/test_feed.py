"""The purchases feed: signatures, the three event types, idempotency, nothing half-written."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from app.domain.access import Scope
from app.domain.roles import Role
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.feed import purchase, signature, signed
from tests.world import Client, ClientFactory, SettingsFor, World

FEED = "/api/v1/feed/purchases"


async def send(client: Client, event: dict[str, Any], **sign: Any) -> tuple[int, Any]:
    body, headers = signed(event, **sign)
    response = await client.post(FEED, data=body, headers=headers)
    return response.status, await response.json()


async def cabinet_exists(client: Client, external_id: str) -> bool:
    async with client.app[SERVICES].storage.unit_of_work() as uow:
        return await uow.cabinets.get_by_external_id(external_id, Scope.everything()) is not None


async def test_a_completed_purchase_creates_the_customer_and_its_documents(world: World) -> None:
    event = purchase(world.product.code, parent=None)
    status, outcome = await send(world.client, event)
    assert status == 200, outcome
    assert outcome["cabinet"]["created"] is True
    assert outcome["cabinet"]["external_id"] == event["customer"]["external_id"]
    [license_] = outcome["licenses"]
    [certificate] = outcome["certificates"]
    assert license_["action"] == certificate["action"] == "created"
    assert license_["number"].startswith("LIC-") and certificate["number"].startswith("CRT-")
    staff = world.actors[Role.STAFF].headers
    shown = await (await world.client.get(f"/api/v1/certificates/{certificate['id']}",
                                          headers=staff)).json()
    assert shown["license_id"] == license_["id"] and shown["level"] == "premium"
    assert shown["cabinet"]["id"] == outcome["cabinet"]["id"]
    assert shown["valid_to"] == "2027-11-25" and shown["purchase_item"].endswith("-2")


async def test_a_new_customer_goes_under_its_parent(world: World) -> None:
    parent_event = purchase(world.product.code)
    _, parent = await send(world.client, parent_event)
    status, child = await send(world.client, purchase(
        world.product.code, parent=parent_event["customer"]["external_id"]))
    assert status == 200
    cabinet = await (await world.client.get(
        f"/api/v1/cabinets/{child['cabinet']['id']}",
        headers=world.actors[Role.STAFF].headers)).json()
    assert cabinet["parent_id"] == parent["cabinet"]["id"]


async def test_unsigned_forged_and_stale_events_are_refused_and_write_nothing(
        world: World) -> None:
    event = purchase(world.product.code)
    body = json.dumps(event).encode()
    cases = {
        "missing": {},
        "wrong secret": {"X-Portal-Signature": signature(body, secret="guess")},
        "stale": {"X-Portal-Signature": signature(body, at=time.time() - 310)},
        "from the future": {"X-Portal-Signature": signature(body, at=time.time() + 310)},
        "other body": {"X-Portal-Signature": signature(body + b" ")},
        "garbage": {"X-Portal-Signature": "t=abc,v1=zz"},
        # Once an overflow in the check (500): a number from outside is range-checked first.
        "a 310-digit timestamp": {"X-Portal-Signature": f"t={'9' * 310},v1={'0' * 64}"},
        "digits of another script": {"X-Portal-Signature": f"t=١٧٩٦٥١٧٨٨٤,v1={'0' * 64}"},
        "a negative timestamp": {"X-Portal-Signature": f"t=-1,v1={'0' * 64}"},
    }
    for name, headers in cases.items():
        response = await world.client.post(
            FEED, data=body, headers={"Content-Type": "application/json", **headers})
        assert response.status == 401, name
        assert (await response.json())["type"] == "/problems/unauthenticated"
    # A user's bearer token is no substitute for the signature.
    response = await world.client.post(FEED, data=body, headers={
        "Content-Type": "application/json", **world.actors[Role.STAFF_ADMIN].headers})
    assert response.status == 401
    assert not await cabinet_exists(world.client, event["customer"]["external_id"])


async def test_the_same_event_again_answers_the_first_outcome_and_changes_nothing(
        world: World) -> None:
    event = purchase(world.product.code)
    body, headers = signed(event)
    first = await world.client.post(FEED, data=body, headers=headers)
    again = await world.client.post(FEED, data=body, headers=signed(event)[1])
    assert first.status == again.status == 200
    assert await first.json() == await again.json()
    assert "X-Portal-Replayed" not in first.headers
    assert again.headers["X-Portal-Replayed"] == "true"
    listed = await (await world.client.get(
        "/api/v1/licenses", params={"cabinet_id": (await first.json())["cabinet"]["id"]},
        headers=world.actors[Role.STAFF].headers)).json()
    assert len(listed["items"]) == 1


async def test_ten_copies_at_once_make_one_set_of_documents(world: World) -> None:
    event = purchase(world.product.code)
    answers = await asyncio.gather(*(send(world.client, event) for _ in range(10)))
    assert {status for status, _ in answers} == {200}
    assert len({json.dumps(outcome, sort_keys=True) for _, outcome in answers}) == 1
    cabinet_id = answers[0][1]["cabinet"]["id"]
    staff = world.actors[Role.STAFF].headers
    for plural in ("licenses", "certificates"):
        listed = await (await world.client.get(f"/api/v1/{plural}",
                                               params={"cabinet_id": cabinet_id},
                                               headers=staff)).json()
        assert len(listed["items"]) == 1, plural


async def test_an_unknown_product_is_422_and_nothing_is_written(world: World) -> None:
    event = purchase(world.product.code)
    event["items"][1]["product_code"] = "no-such-product"
    status, problem = await send(world.client, event)
    assert status == 422
    assert problem["errors"][0]["field"] == "items.1.product_code"
    # The first item and the new cabinet went with the rest: one transaction.
    assert not await cabinet_exists(world.client, event["customer"]["external_id"])
    # And the event id is free again: the corrected event goes through.
    event["items"][1]["product_code"] = world.product.code
    status, _ = await send(world.client, event)
    assert status == 200


async def test_renewal_and_refund_follow_items_even_after_a_transfer(world: World) -> None:
    event = purchase(world.product.code)
    customer = event["customer"]["external_id"]
    _, created = await send(world.client, event)
    license_id = created["licenses"][0]["id"]
    item = created["licenses"][0]["purchase_item"]
    staff_admin = world.actors[Role.STAFF_ADMIN].headers
    child = await (await world.client.post("/api/v1/cabinets", headers=staff_admin, json={
        "name": "Child", "parent_id": created["cabinet"]["id"]})).json()
    moved = await world.client.post(f"/api/v1/licenses/{license_id}/transfer",
                                    headers=staff_admin, json={"cabinet_id": child["id"]})
    assert moved.status == 200

    renew = purchase(world.product.code, customer, type_="purchase.renewed", items=[
        {"external_id": item, "kind": "license", "valid_to": "2029-11-25"}])
    status, renewed = await send(world.client, renew)
    assert status == 200, renewed
    assert renewed["licenses"][0]["action"] == "renewed"
    shown = await (await world.client.get(f"/api/v1/licenses/{license_id}",
                                          headers=staff_admin)).json()
    assert shown["valid_to"] == "2029-11-25" and shown["cabinet"]["id"] == child["id"]

    refund = purchase(world.product.code, customer, type_="purchase.refunded", items=[
        {"external_id": item, "kind": "license"}])
    status, refunded = await send(world.client, refund)
    assert status == 200 and refunded["licenses"][0]["action"] == "revoked"
    shown = await (await world.client.get(f"/api/v1/licenses/{license_id}",
                                          headers=staff_admin)).json()
    assert shown["status"] == "revoked"


async def test_renewing_what_the_customer_does_not_hold_is_422(world: World) -> None:
    _, first = await send(world.client, purchase(world.product.code))
    other = purchase(world.product.code)
    await send(world.client, other)
    # Another customer's item: not this customer's to renew.
    renew = purchase(world.product.code, other["customer"]["external_id"],
                     type_="purchase.renewed", items=[
                         {"external_id": first["licenses"][0]["purchase_item"],
                          "kind": "license", "valid_to": "2030-01-01"}])
    status, problem = await send(world.client, renew)
    assert status == 422 and problem["errors"][0]["field"] == "items.0.external_id"
    unknown_customer = purchase(world.product.code, "CRM-nobody", type_="purchase.refunded",
                                items=[{"external_id": "x", "kind": "license"}])
    status, problem = await send(world.client, unknown_customer)
    assert status == 422 and problem["errors"][0]["field"] == "customer.external_id"


async def test_invalid_events_name_the_field(world: World) -> None:
    broken = purchase(world.product.code)
    broken["items"][0]["seats"] = 0
    status, problem = await send(world.client, broken)
    assert status == 422 and problem["errors"][0]["field"] == "items.0.seats"
    backwards = purchase(world.product.code)
    backwards["items"][0]["valid_to"] = "2020-01-01"
    status, problem = await send(world.client, backwards)
    assert status == 422 and problem["errors"][0]["field"] == "items.0.valid_to"


async def test_without_a_secret_the_feed_is_closed(aiohttp_client: ClientFactory,
                                                   settings_for: SettingsFor) -> None:
    client = await aiohttp_client(create_app(settings_for(
        "sqlite", PORTAL_FEEDS__PURCHASES__SECRET="")))
    status, problem = await send(client, purchase("anything"))
    assert status == 503
    assert problem["title"] == "Feed not configured"


async def test_a_renewal_never_shortens_a_license(world: World) -> None:
    event = purchase(world.product.code)
    _, created = await send(world.client, event)
    item = created["licenses"][0]["purchase_item"]
    shorter = purchase(world.product.code, event["customer"]["external_id"],
                       type_="purchase.renewed",
                       items=[{"external_id": item, "kind": "license", "valid_to": "2027-01-01"}])
    status, problem = await send(world.client, shorter)
    assert status == 422 and problem["errors"][0]["field"] == "items.0.valid_to"


async def test_first_events_of_one_new_customer_at_once_all_apply(world: World) -> None:
    """Each created the customer and the loser was told "Another cabinet has this billing
    id" (409), which reads as permanent though a retry worked: now every one applies."""
    first = purchase(world.product.code)
    customer = first["customer"]["external_id"]
    events = [first, *(purchase(world.product.code, customer) for _ in range(5))]
    answers = await asyncio.gather(*(send(world.client, event) for event in events))
    assert [status for status, _ in answers] == [200] * 6, answers
    assert len({outcome["cabinet"]["id"] for _, outcome in answers}) == 1
    assert sum(len(outcome["licenses"]) for _, outcome in answers) == 6


async def test_two_events_racing_for_one_item_never_answer_500(world: World) -> None:
    shared = purchase(world.product.code)
    rival = purchase(world.product.code, items=shared["items"])
    statuses = sorted(status for status, _ in await asyncio.gather(
        send(world.client, shared), send(world.client, rival)))
    assert statuses[0] == 200 and statuses[1] in (409, 422)


async def test_the_billing_contact_is_kept_shown_and_offered_as_the_first_invitation(
        world: World) -> None:
    from tests.api.test_pages import sign_in

    event = purchase(world.product.code)
    event["customer"]["contact_email"] = "Billing.Contact@Acme.example"
    status, outcome = await send(world.client, event)
    assert status == 200, outcome
    cabinet_id = outcome["cabinet"]["id"]
    staff_admin = world.actors[Role.STAFF_ADMIN]
    shown = await (await world.client.get(f"/api/v1/cabinets/{cabinet_id}",
                                          headers=staff_admin.headers)).json()
    assert shown["contact_email"] == "Billing.Contact@Acme.example"

    # A later purchase may name another contact; one without a contact keeps it.
    again = purchase(world.product.code, event["customer"]["external_id"])
    again["customer"]["contact_email"] = None
    assert (await send(world.client, again))[0] == 200
    kept = await (await world.client.get(f"/api/v1/cabinets/{cabinet_id}",
                                         headers=staff_admin.headers)).json()
    assert kept["contact_email"] == "Billing.Contact@Acme.example"
    bad = purchase(world.product.code)
    bad["customer"]["contact_email"] = "not an address"
    status, problem = await send(world.client, bad)
    assert status == 422 and problem["errors"][0]["field"] == "customer.contact_email"

    await sign_in(world.client, staff_admin.email)
    page = await (await world.client.get(f"/cabinets/{cabinet_id}")).text()
    assert "Billing contact" in page and 'id="invite-contact"' in page
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    invited = await world.client.post(f"/cabinets/{cabinet_id}/users", data={
        "csrf_token": token, "email": "Billing.Contact@Acme.example", "role": "customer_admin"})
    assert invited.status == 201
    after = await invited.text()
    assert "Billing.Contact@Acme.example was added" in after
    assert 'id="invite-contact"' not in after  # they are a user now
