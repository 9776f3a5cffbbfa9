"""The purchases feed: events from the billing system turned into cabinets, licenses and
support certificates. Each event is one transaction and is applied once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.domain.access import Scope
from app.domain.cabinets import Cabinet, CabinetKind
from app.domain.errors import Conflict, Invalid, TryAgain
from app.domain.events import DocumentIssued, DocumentRenewed, DocumentRevoked
from app.domain.licensing import (
    Certificate,
    DocumentKind,
    License,
    check_seats,
    check_validity,
)
from app.domain.purchases import (
    PurchaseAction,
    PurchaseEvent,
    PurchaseItem,
    PurchaseOutcome,
    PurchaseType,
)
from app.domain.users import SYSTEM, check_email
from app.services.cabinets import add_cabinet
from app.services.licensing import documents, new_numbers
from app.services.signatures import FeedDisabled, check_signature
from app.services.work import Transactions, UseCases
from ports.storage import DuplicateKey, UnitOfWork
from ports.system import Clock, IdGenerator

log = logging.getLogger(__name__)
EVERYTHING = Scope.everything()


@contextmanager
def about(prefix: str) -> Iterator[None]:
    """Name the item a rule broke: "valid_to" becomes "items.2.valid_to"."""
    try:
        yield
    except Invalid as exc:
        raise Invalid(exc.detail, field=f"{prefix}.{exc.field}" if exc.field else prefix) from None


@dataclass(frozen=True)
class FeedPolicy:
    secret: str
    tolerance_seconds: int


RETRIES = 3


class _Clashed(Exception):
    """A concurrent transaction won a race this one lost: apply the event again."""


class PurchaseService(UseCases):
    def __init__(self, work: Transactions, clock: Clock, ids: IdGenerator,
                 policy: FeedPolicy) -> None:
        super().__init__(work, clock, ids)
        self._policy = policy

    def verify_signature(self, header: str | None, body: bytes) -> None:
        """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>`, keyed with the feed
        secret, no further than the tolerance from now; Unauthenticated otherwise."""
        if not self._policy.secret:
            log.error("a purchase event arrived but feeds.purchases.secret is not set")
            raise FeedDisabled("The purchases feed is not configured on this portal.")
        check_signature(self._policy.secret, header, body, self._clock.now(),
                        self._policy.tolerance_seconds)

    async def apply(self, event: PurchaseEvent) -> tuple[dict[str, Any], bool]:
        """The event's outcome, and whether it was a repeat (then nothing changed).

        Events applied at the same moment can clash (two first events of one new customer
        both create it; two take one document number): the loser's transaction is rolled
        back and the event applied again, which then finds what the winner made. Only a
        clash that outlasts the retries is answered, as 503 with Retry-After: it is never
        the sender's fault."""
        for _ in range(RETRIES):
            try:
                return await self._apply_once(event)
            except _Clashed:
                await asyncio.sleep(0.05)
        raise TryAgain("Other events for the same customer were being applied at the same "
                       "moment; nothing was written. Send this one again.")

    async def _apply_once(self, event: PurchaseEvent) -> tuple[dict[str, Any], bool]:
        now = self._clock.now()
        async with self._work() as uow:
            if not await uow.purchases.claim(event.event_id, event.type.value,
                                             event.occurred_at, now):
                stored = await uow.purchases.outcome(event.event_id)
                if stored is None:
                    raise _Clashed  # the same event, being applied right now elsewhere
                return stored, True
            apply = {PurchaseType.COMPLETED: self._complete, PurchaseType.RENEWED: self._renew,
                     PurchaseType.REFUNDED: self._refund}[event.type]
            try:
                outcome = await apply(uow, event, now)
            except DuplicateKey:
                raise _Clashed from None  # a concurrent event took an item id or a number
            result = outcome.as_data()
            await uow.purchases.record_outcome(event.event_id, result)
            await uow.audit.add(self._audit.entry(
                "purchase.applied", None, "purchase_event", event.event_id,
                outcome.cabinet["id"], type=event.type.value,
                licenses=len(outcome.licenses), certificates=len(outcome.certificates)))
            await uow.commit()
        return result, False

    async def _customer(self, uow: UnitOfWork, event: PurchaseEvent, now: datetime,
                        create: bool) -> tuple[Cabinet, bool]:
        customer = event.customer
        contact = None
        if customer.contact_email:
            try:
                contact = check_email(customer.contact_email)
            except Invalid as exc:
                raise Invalid(exc.detail, field="customer.contact_email") from None
        cabinet = await uow.cabinets.get_by_external_id(customer.external_id, EVERYTHING)
        if cabinet is not None:
            if cabinet.kind is not CabinetKind.CUSTOMER:
                raise Invalid("This billing id belongs to a vendor organisation.",
                              field="customer.external_id")
            name = " ".join(customer.name.split())
            if create and ((name and cabinet.name != name)
                           or (contact and cabinet.contact_email != contact)):
                cabinet.name = name or cabinet.name
                cabinet.contact_email = contact or cabinet.contact_email
                cabinet.updated_at = now
                await uow.cabinets.update(cabinet)
            return cabinet, False
        if not create:
            raise Invalid("No customer has this billing id.", field="customer.external_id")
        parent = None
        if customer.parent_external_id:
            parent = await uow.cabinets.get_by_external_id(customer.parent_external_id,
                                                           EVERYTHING)
            if parent is None:
                raise Invalid("No customer has the parent's billing id.",
                              field="customer.parent_external_id")
        try:
            cabinet = await add_cabinet(uow, self._audit, SYSTEM, self._ids.new_id(), now,
                                        customer.name, CabinetKind.CUSTOMER, parent,
                                        customer.external_id, contact)
        except Conflict as exc:
            if exc.field == "external_id":
                raise _Clashed from None  # another event created this customer just now
            raise
        return cabinet, True

    async def _complete(self, uow: UnitOfWork, event: PurchaseEvent,
                        now: datetime) -> PurchaseOutcome:
        cabinet, created = await self._customer(uow, event, now, create=True)
        outcome = self._outcome(event, cabinet, created)
        # What the items need is read first, a statement per question for all of them (a
        # purchase may hold hundreds); each item is then judged in order as before.
        products = {code: await uow.products.get_by_code(code)
                    for code in dict.fromkeys(item.product_code or "" for item in event.items)}
        issued_before = {kind: await documents(uow, kind).by_purchase_items(
            [item.external_id for item in event.items if item.kind is kind], EVERYTHING)
            for kind in DocumentKind}
        numbers = {kind: await new_numbers(
            uow, kind, now.year, sum(item.kind is kind for item in event.items))
            for kind in DocumentKind}
        licensed = await self._licensed(uow, event.items)
        made: dict[DocumentKind, list[Any]] = {kind: [] for kind in DocumentKind}
        seen: set[str] = set()
        for index, item in enumerate(event.items):
            field = f"items.{index}"
            if item.external_id in seen:
                raise Invalid("The event names this item twice.", field=f"{field}.external_id")
            seen.add(item.external_id)
            product = products[item.product_code or ""]
            if product is None:
                raise Invalid("No product has this code.", field=f"{field}.product_code")
            if item.external_id in issued_before[item.kind]:
                raise Invalid("This item was issued before.", field=f"{field}.external_id")
            valid_from = item.valid_from or event.occurred_at.date()
            with about(field):
                check_validity(valid_from, item.valid_to, item.kind)
            common: dict[str, Any] = {
                "id": self._ids.new_id(), "number": numbers[item.kind].pop(),
                "product_id": product.id, "cabinet_id": cabinet.id, "valid_from": valid_from,
                "valid_to": item.valid_to, "revoked_at": None,
                "purchase_item": item.external_id, "created_at": now, "updated_at": now}
            document: License | Certificate
            if item.kind is DocumentKind.LICENSE:
                if not item.edition or item.seats is None:
                    raise Invalid("A license needs an edition and seats.", field=field)
                with about(field):
                    seats = check_seats(item.seats)
                document = License(**common, edition=item.edition, seats=seats)
                licensed[item.external_id] = document.id
            else:
                if not item.level:
                    raise Invalid("A support certificate needs a level.", field=f"{field}.level")
                document = Certificate(**common, level=item.level,
                                       license_id=_license_id(item, licensed, field))
            made[item.kind].append(document)
            outcome.add(item.kind, document.id, document.number, item.external_id,
                        PurchaseAction.CREATED)
            uow.events.record(DocumentIssued(
                kind=item.kind, document_id=document.id, number=document.number,
                product_name=product.name, valid_to=document.valid_to,
                cabinet_ids=_concerned(cabinet, document)))
        # Licenses first: a certificate may cover one of them.
        await uow.licenses.add(*made[DocumentKind.LICENSE])
        await uow.certificates.add(*made[DocumentKind.CERTIFICATE])
        return outcome

    async def _renew(self, uow: UnitOfWork, event: PurchaseEvent,
                     now: datetime) -> PurchaseOutcome:
        cabinet, outcome, held = await self._named(uow, event, now)
        for field, item, document in held:
            if item.valid_to is None:
                raise Invalid("A renewal needs the new end date.", field=f"{field}.valid_to")
            if document.revoked_at is not None:
                raise Invalid("A revoked item cannot be renewed.", field=field)
            if document.valid_to is None or item.valid_to < document.valid_to:
                raise Invalid("A renewal extends: the new end date must not come before the "
                              "current one, and a perpetual license has none.",
                              field=f"{field}.valid_to")
            with about(field):
                check_validity(document.valid_from, item.valid_to, item.kind)
            document.valid_to, document.updated_at = item.valid_to, now
            await documents(uow, item.kind).update(document)
            outcome.add(item.kind, document.id, document.number, item.external_id,
                        PurchaseAction.RENEWED)
            uow.events.record(DocumentRenewed(
                kind=item.kind, document_id=document.id, number=document.number,
                valid_to=document.valid_to, cabinet_ids=_concerned(cabinet, document)))
        return outcome

    async def _refund(self, uow: UnitOfWork, event: PurchaseEvent,
                      now: datetime) -> PurchaseOutcome:
        cabinet, outcome, held = await self._named(uow, event, now)
        for _, item, document in held:
            if document.revoked_at is None:
                document.revoked_at, document.updated_at = now, now
                await documents(uow, item.kind).update(document)
                uow.events.record(DocumentRevoked(
                    kind=item.kind, document_id=document.id, number=document.number,
                    cabinet_ids=_concerned(cabinet, document)))
            outcome.add(item.kind, document.id, document.number, item.external_id,
                        PurchaseAction.REVOKED)
        return outcome

    async def _named(self, uow: UnitOfWork, event: PurchaseEvent, now: datetime
                     ) -> tuple[Cabinet, PurchaseOutcome,
                                list[tuple[str, PurchaseItem, License | Certificate]]]:
        """A renewal's or a refund's customer, its outcome so far, and each item (with its
        field name) together with the document it names, locked: an item the customer
        holds, itself or (after transfers) a cabinet below it."""
        cabinet, _ = await self._customer(uow, event, now, create=False)
        held = {kind: await documents(uow, kind).by_purchase_items(
            [item.external_id for item in event.items if item.kind is kind],
            Scope.subtree(cabinet.path), for_update=True) for kind in DocumentKind}
        named = []
        for index, item in enumerate(event.items):
            document = held[item.kind].get(item.external_id)
            if document is None:
                raise Invalid("This customer holds no such item.",
                              field=f"items.{index}.external_id")
            named.append((f"items.{index}", item, document))
        return cabinet, self._outcome(event, cabinet, False), named

    @staticmethod
    async def _licensed(uow: UnitOfWork, items: tuple[PurchaseItem, ...]) -> dict[str, str]:
        """Purchase item -> license id of the licenses issued before that this event's
        certificates cover; the event's own licenses are added as they are made."""
        own = {item.external_id for item in items if item.kind is DocumentKind.LICENSE}
        earlier = [item.license_external_id for item in items
                   if item.license_external_id is not None
                   and item.license_external_id not in own]
        return {item: license_.id for item, license_
                in (await uow.licenses.by_purchase_items(earlier, EVERYTHING)).items()}

    @staticmethod
    def _outcome(event: PurchaseEvent, cabinet: Cabinet, created: bool) -> PurchaseOutcome:
        return PurchaseOutcome(event.event_id, event.type.value, {
            "id": cabinet.id, "name": cabinet.name, "external_id": cabinet.external_id,
            "created": created})


def _license_id(item: PurchaseItem, licensed: dict[str, str], field: str) -> str | None:
    if item.license_external_id is None:
        return None
    if item.license_external_id not in licensed:
        raise Invalid("No license has this purchase item.",
                      field=f"{field}.license_external_id")
    return licensed[item.license_external_id]


def _concerned(customer: Cabinet, document: License | Certificate) -> tuple[str, ...]:
    """The customer of the purchase, and whoever holds the document now (a cabinet below
    it, after a transfer)."""
    return tuple(dict.fromkeys((customer.id, document.cabinet_id)))
