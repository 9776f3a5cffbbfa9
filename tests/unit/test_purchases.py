"""The purchases feed on fakes: signatures judged by the clock, each event once, and what a
purchase, a renewal and a refund tell the customer."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from app.domain.errors import Invalid, Unauthenticated
from app.domain.events import DocumentIssued, DocumentRenewed, DocumentRevoked
from app.domain.licensing import DocumentKind
from app.domain.purchases import PurchaseCustomer, PurchaseEvent, PurchaseItem, PurchaseType
from app.domain.roles import Role
from tests.unit.core import FEED_SECRET, Core

AT = datetime(2026, 11, 26, 10, tzinfo=UTC)


def event(type_: PurchaseType, *items: PurchaseItem, event_id: str = "evt-1",
          customer: str = "CRM-1") -> PurchaseEvent:
    return PurchaseEvent(event_id, type_, AT, PurchaseCustomer(customer, "Initech",
                                                               contact_email="it@initech.test"),
                         items)


LICENSE = PurchaseItem("ORD-1", DocumentKind.LICENSE, "dbguard", "Enterprise", 20,
                       valid_from=date(2026, 11, 26), valid_to=date(2027, 11, 25))
CERTIFICATE = PurchaseItem("ORD-2", DocumentKind.CERTIFICATE, "dbguard", level="premium",
                           valid_from=date(2026, 11, 26), valid_to=date(2027, 11, 25),
                           license_external_id="ORD-1")


def signed(body: bytes, stamp: int, secret: str = FEED_SECRET) -> str:
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    return f"t={stamp},v1={digest.hexdigest()}"


async def test_a_signature_is_checked_against_the_secret_and_the_clock() -> None:
    core = Core()
    now = int(core.clock.now().timestamp())
    core.purchases.verify_signature(signed(b"{}", now), b"{}")
    for header in (signed(b"{}", now, "wrong"), signed(b"{}", now - 301), "t=x,v1=y", None,
                   signed(b"{}", now).replace("t=", "t=0")):
        with pytest.raises(Unauthenticated):
            core.purchases.verify_signature(header, b"{}")
    with pytest.raises(Unauthenticated):
        core.purchases.verify_signature(signed(b"{}", now), b"{ }")  # another body


async def test_a_completed_purchase_is_applied_once_and_tells_the_new_customer() -> None:
    core = Core()
    await core.tree()
    outcome, replayed = await core.purchases.apply(event(PurchaseType.COMPLETED, LICENSE,
                                                         CERTIFICATE))
    assert replayed is False and outcome["cabinet"]["created"] is True
    cabinet_id = outcome["cabinet"]["id"]
    assert core.storage.state.cabinets[cabinet_id].contact_email == "it@initech.test"
    [license_] = core.storage.state.licenses.values()
    [certificate] = core.storage.state.certificates.values()
    assert certificate.license_id == license_.id and license_.seats == 20
    issued = [e for e in core.bus.published if isinstance(e, DocumentIssued)]
    assert [(e.kind, e.number) for e in issued] == [
        (DocumentKind.LICENSE, license_.number), (DocumentKind.CERTIFICATE, certificate.number)]

    again, replayed = await core.purchases.apply(event(PurchaseType.COMPLETED, LICENSE,
                                                       CERTIFICATE))
    assert replayed is True and again == outcome
    assert len(core.storage.state.licenses) == 1
    assert len([e for e in core.bus.published if isinstance(e, DocumentIssued)]) == 2


async def test_a_broken_item_leaves_nothing_behind() -> None:
    core = Core()
    await core.tree()
    unknown = PurchaseItem("ORD-3", DocumentKind.LICENSE, "no-such", "Pro", 1)
    with pytest.raises(Invalid) as refused:
        await core.purchases.apply(event(PurchaseType.COMPLETED, LICENSE, unknown))
    assert refused.value.field == "items.1.product_code"
    assert core.storage.state.licenses == {} and core.bus.published == []
    # The event id was not spent: the corrected event goes through.
    outcome, replayed = await core.purchases.apply(event(PurchaseType.COMPLETED, LICENSE))
    assert replayed is False and len(outcome["licenses"]) == 1


async def test_a_renewal_and_a_refund_tell_whoever_holds_the_document_now() -> None:
    core = Core()
    tree = await core.tree()
    await core.purchases.apply(event(PurchaseType.COMPLETED, LICENSE, event_id="buy"))
    [license_] = core.storage.state.licenses.values()
    # Handed down to a child of the customer since.
    customer = core.storage.state.cabinets[license_.cabinet_id]
    holder = await core.cabinets.create(tree.actors[Role.STAFF_ADMIN], "Initech Labs",
                                        customer.kind, customer.id)
    core.storage.state.licenses[license_.id].cabinet_id = holder.id
    user = await core.users.create_with_password(tree.actors[Role.STAFF_ADMIN], holder.id,
                                                 "labs@initech.test", "Lab", Role.CUSTOMER_USER,
                                                 "a long enough password")

    longer = PurchaseItem("ORD-1", DocumentKind.LICENSE, valid_to=date(2028, 11, 25))
    await core.purchases.apply(event(PurchaseType.RENEWED, longer, event_id="renew"))
    assert core.storage.state.licenses[license_.id].valid_to == date(2028, 11, 25)
    shorter = PurchaseItem("ORD-1", DocumentKind.LICENSE, valid_to=date(2027, 1, 1))
    with pytest.raises(Invalid):
        await core.purchases.apply(event(PurchaseType.RENEWED, shorter, event_id="shrink"))
    await core.purchases.apply(event(PurchaseType.REFUNDED, longer, event_id="refund"))
    assert core.storage.state.licenses[license_.id].revoked_at == core.clock.now()

    renewed = [e for e in core.bus.published if isinstance(e, DocumentRenewed)]
    revoked = [e for e in core.bus.published if isinstance(e, DocumentRevoked)]
    assert [e.cabinet_ids for e in renewed + revoked] == [(customer.id, holder.id)] * 2
    assert core.told(user) == [f"{license_.number} renewed", f"{license_.number} revoked"]
    with pytest.raises(Invalid):  # a revoked license is not renewed
        await core.purchases.apply(event(PurchaseType.RENEWED, longer, event_id="late"))


async def test_a_purchase_of_many_is_one_message_per_kind_and_links_what_it_covers() -> None:
    core = Core()
    tree = await core.tree()
    await core.purchases.apply(event(PurchaseType.COMPLETED, LICENSE, event_id="first"))
    [first] = core.storage.state.licenses.values()
    user = await core.users.create_with_password(
        tree.actors[Role.STAFF_ADMIN], first.cabinet_id, "it@initech.test", "IT",
        Role.CUSTOMER_ADMIN, "a long enough password")
    many = [replace(LICENSE, external_id=f"ORD-M{n}", seats=n + 1) for n in range(12)]
    # Certificates covering a license of this event and one of the first purchase.
    covering = [replace(CERTIFICATE, external_id="ORD-C1", license_external_id="ORD-M3"),
                replace(CERTIFICATE, external_id="ORD-C2", license_external_id="ORD-1")]
    outcome, _ = await core.purchases.apply(event(PurchaseType.COMPLETED, *many, *covering,
                                                  event_id="many"))

    state = core.storage.state
    numbers = [entry["number"] for entry in outcome["licenses"]]
    assert len(set(numbers)) == 12
    licensed = {d.purchase_item: d for d in state.licenses.values()}
    covers = {d.purchase_item: d.license_id for d in state.certificates.values()}
    assert [licensed[f"ORD-M{n}"].seats for n in range(12)] == list(range(1, 13))
    assert covers == {"ORD-C1": licensed["ORD-M3"].id, "ORD-C2": first.id}
    assert core.told(user) == ["12 licenses and 2 support certificates issued"]
    [told] = state.notifications
    assert told.body == f"{', '.join(numbers[:5])} and 9 more were issued for DB Guard." \
        and told.link == "/licenses"
    assert sorted(m.subject for m in state.outbox.values() if user.email in m.recipient) \
        == sorted(core.told(user))

    later = replace(LICENSE, valid_to=date(2029, 1, 31))
    await core.purchases.apply(event(PurchaseType.RENEWED, *[
        replace(later, external_id=f"ORD-M{n}") for n in range(3)], event_id="renew"))
    assert core.told(user)[-1] == "3 licenses renewed"
    [renewed] = [n for n in core.storage.state.notifications
                 if n.title == "3 licenses renewed"]
    assert renewed.body == (f"{', '.join(numbers[:2])} and {numbers[2]} are valid "
                            "until 2029-01-31 now.")


async def test_an_item_of_many_that_breaks_a_rule_is_named_and_nothing_is_issued() -> None:
    core = Core()
    await core.tree()
    many = [replace(LICENSE, external_id=f"ORD-M{n}") for n in range(5)]
    cases = [
        ([*many[:2], many[1], *many[2:]], "items.2.external_id"),
        # A certificate may cover only a license before it in the event, or issued before.
        ([replace(CERTIFICATE, license_external_id="ORD-M4"), *many],
         "items.0.license_external_id"),
        ([*many[:3], replace(many[3], seats=0), many[4]], "items.3.seats"),
    ]
    for items, field in cases:
        with pytest.raises(Invalid) as refused:
            await core.purchases.apply(event(PurchaseType.COMPLETED, *items))
        assert refused.value.field == field
    assert core.storage.state.licenses == {} and core.storage.state.notifications == []
