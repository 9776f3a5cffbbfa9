"""Licenses and certificates by hand, outside the purchases feed: staff administrators
issue them (trials, replacements), extend them and revoke them, each with a reason. Every
act is in the audit log with its reason, and the organisation is told as after a purchase."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from app.domain import access
from app.domain.access import Scope
from app.domain.errors import Conflict, Invalid, NotFound
from app.domain.events import DocumentIssued, DocumentRenewed, DocumentRevoked
from app.domain.licensing import (
    Certificate,
    DocumentKind,
    License,
    check_seats,
    check_validity,
)
from app.domain.users import Principal
from app.services.licensing import documents, new_numbers
from app.services.work import UseCases
from ports.storage import UnitOfWork

MAX_REASON = 500
MAX_WORD = 100
EVERYTHING = Scope.everything()


@dataclass(frozen=True)
class HandIssue:
    """A license (edition, seats) or a support certificate (level, and the number of a
    license of the organisation it covers, if any)."""

    kind: DocumentKind
    cabinet_id: str
    product_id: str
    # None: today.
    valid_from: date | None
    valid_to: date | None
    reason: str
    edition: str = ""
    seats: int | None = None
    level: str = ""
    license_number: str = ""


def _reason(text: str) -> str:
    reason = " ".join(text.split())
    if not reason:
        raise Invalid("Say why: the reason goes in the audit log.", field="reason")
    if len(reason) > MAX_REASON:
        raise Invalid(f"A reason of at most {MAX_REASON} characters.", field="reason")
    return reason


def _word(text: str, field: str, what: str) -> str:
    word = text.strip()
    if not word or len(word) > MAX_WORD:
        raise Invalid(f"Name the {what} (at most {MAX_WORD} characters).", field=field)
    return word


class IssuingService(UseCases):
    async def issue(self, actor: Principal, draft: HandIssue) -> License | Certificate:
        access.require_may_issue_by_hand(actor)
        reason = _reason(draft.reason)
        now = self._clock.now()
        valid_from = draft.valid_from or now.date()
        check_validity(valid_from, draft.valid_to, draft.kind)
        async with self._work() as uow:
            cabinet = access.require_visible(actor, await uow.cabinets.get(
                draft.cabinet_id, access.visible_scope(actor)), "organisation")
            product = await uow.products.get(draft.product_id)
            if product is None:
                raise Invalid("No such product.", field="product_id")
            [number] = await new_numbers(uow, draft.kind, now.year, 1)
            common: dict[str, Any] = {
                "id": self._ids.new_id(), "number": number, "product_id": product.id,
                "cabinet_id": cabinet.id, "valid_from": valid_from,
                "valid_to": draft.valid_to, "revoked_at": None, "purchase_item": None,
                "created_at": now, "updated_at": now}
            document: License | Certificate
            if draft.kind is DocumentKind.LICENSE:
                if draft.seats is None:
                    raise Invalid("A license needs its number of seats.", field="seats")
                document = License(**common, edition=_word(draft.edition, "edition", "edition"),
                                   seats=check_seats(draft.seats))
                await uow.licenses.add(document)
            else:
                covered = None
                if draft.license_number.strip():
                    covered = await uow.licenses.get_by_number(
                        draft.license_number.strip().upper(), Scope.subtree(cabinet.path))
                    if covered is None:
                        raise Invalid("This organisation holds no license with that number.",
                                      field="license_number")
                document = Certificate(**common, level=_word(draft.level, "level", "level"),
                                       license_id=covered.id if covered else None)
                await uow.certificates.add(document)
            await uow.audit.add(self._audit.entry(
                f"{draft.kind.value}.issued", actor, draft.kind.value, document.id, cabinet.id,
                number=number, product=product.code, valid_to=str(draft.valid_to or "never"),
                reason=reason))
            uow.events.record(DocumentIssued(
                kind=draft.kind, document_id=document.id, number=number,
                product_name=product.name, valid_to=draft.valid_to, cabinet_ids=(cabinet.id,)))
            await uow.commit()
        return document

    async def extend(self, actor: Principal, kind: DocumentKind, document_id: str,
                     valid_to: date, reason: str) -> License | Certificate:
        """A later end date (a perpetual license has none to move)."""
        access.require_may_issue_by_hand(actor)
        reason = _reason(reason)
        async with self._work() as uow:
            document = await self._held(uow, kind, document_id)
            if document.revoked_at is not None:
                raise Conflict("A revoked document cannot be extended.", field="valid_to")
            if document.valid_to is None:
                raise Conflict("A perpetual license has no end date to move.", field="valid_to")
            if valid_to <= document.valid_to:
                raise Invalid(f"Choose a day after the current end, {document.valid_to}.",
                              field="valid_to")
            before = document.valid_to
            document.valid_to, document.updated_at = valid_to, self._clock.now()
            await documents(uow, kind).update(document)
            await uow.audit.add(self._audit.entry(
                f"{kind.value}.extended", actor, kind.value, document.id, document.cabinet_id,
                number=document.number, changes={"valid_to": [str(before), str(valid_to)]},
                reason=reason))
            uow.events.record(DocumentRenewed(
                kind=kind, document_id=document.id, number=document.number,
                valid_to=valid_to, cabinet_ids=(document.cabinet_id,)))
            await uow.commit()
        return document

    async def revoke(self, actor: Principal, kind: DocumentKind, document_id: str,
                     reason: str) -> License | Certificate:
        access.require_may_issue_by_hand(actor)
        reason = _reason(reason)
        async with self._work() as uow:
            document = await self._held(uow, kind, document_id)
            if document.revoked_at is not None:
                raise Conflict("It is revoked already.")
            now = self._clock.now()
            document.revoked_at, document.updated_at = now, now
            await documents(uow, kind).update(document)
            await uow.audit.add(self._audit.entry(
                f"{kind.value}.revoked", actor, kind.value, document.id, document.cabinet_id,
                number=document.number, reason=reason))
            uow.events.record(DocumentRevoked(
                kind=kind, document_id=document.id, number=document.number,
                cabinet_ids=(document.cabinet_id,)))
            await uow.commit()
        return document

    @staticmethod
    async def _held(uow: UnitOfWork, kind: DocumentKind,
                    document_id: str) -> License | Certificate:
        document: License | Certificate | None = await documents(uow, kind).get(
            document_id, EVERYTHING, for_update=True)
        if document is None:
            raise NotFound(f"No such {kind.label.lower()}.")
        return document
