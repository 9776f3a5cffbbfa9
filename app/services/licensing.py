"""Licenses and support certificates: lists, details, transfers down the tree, and the
public check of a document's number."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app.domain import access
from app.domain.cabinets import Cabinet
from app.domain.errors import BadRequest, Conflict, Invalid, NotFound
from app.domain.events import DocumentTransferred
from app.domain.licensing import (
    DOCUMENT_SORTS,
    Certificate,
    DocumentFilter,
    DocumentKind,
    DocumentStatus,
    License,
    Transfer,
    number_for,
)
from app.domain.paging import MAX_LIMIT, MAX_SEARCH, Page, PageRequest, check_sort
from app.domain.products import Product
from app.domain.users import Principal
from app.services.work import UseCases
from ports.storage import DocumentRepository, UnitOfWork

Document = License | Certificate


@dataclass(frozen=True)
class DocumentView:
    """A document with what it names: its product and its owner."""

    document: Document
    product: Product
    cabinet: Cabinet
    today: date
    transfers: list[Transfer] = field(default_factory=list)
    # For a support certificate tied to a license: that license's number.
    license_number: str | None = None
    # Names of the cabinets in the transfer history that the reader may see.
    cabinet_names: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.document.id

    @property
    def status(self) -> DocumentStatus:
        return self.document.status(self.today)

    @property
    def days_left(self) -> int | None:
        return self.document.days_left(self.today)


@dataclass(frozen=True)
class DocumentQuery:
    """A list request as the caller put it; product is an id or a code."""

    product: str | None = None
    status: DocumentStatus | None = None
    cabinet_id: str | None = None
    expires_before: date | None = None
    # Part of the number or of the holder's name.
    search: str = ""
    # False: only the organisation itself (`cabinet_id`, else the caller's own).
    include_children: bool = True


def documents(uow: UnitOfWork, kind: DocumentKind) -> DocumentRepository[Any]:
    return uow.licenses if kind is DocumentKind.LICENSE else uow.certificates


async def new_numbers(uow: UnitOfWork, kind: DocumentKind, year: int, count: int) -> list[str]:
    """`count` numbers no document of the kind has. Random, not sequential: numbers are
    public (the verification page) and must not tell how many documents exist."""
    repository = documents(uow, kind)
    chosen: set[str] = set()
    for _ in range(50):
        if len(chosen) == count:
            return list(chosen)
        drawn = {number_for(kind, year, secrets.randbelow(1_000_000))
                 for _ in range(count - len(chosen))} - chosen
        chosen |= drawn - await repository.numbers_taken(list(drawn))
    raise Conflict("No free document number was found; try again.")


class LicensingService(UseCases):
    def today(self) -> date:
        return self._clock.now().date()

    async def list_visible(self, actor: Principal, kind: DocumentKind, query: DocumentQuery,
                           page: PageRequest) -> Page[DocumentView]:
        """What the caller's cabinet and those below it hold (staff: everything), or what
        one visible cabinet and those below it hold. A numbered page comes with the count."""
        today = self.today()
        async with self._work(read_only=True) as uow:
            scope = access.visible_scope(actor)
            cabinet = None
            if query.cabinet_id is not None:
                cabinet = access.require_visible(
                    actor, await uow.cabinets.get(query.cabinet_id, scope))
            scope = access.narrowed(actor, scope, cabinet, query.include_children)
            product_id = await self._product_id(uow, query.product)
            filters = DocumentFilter(today=today, product_id=product_id, status=query.status,
                                     expires_before=query.expires_before,
                                     search=query.search[:MAX_SEARCH])
            repository = documents(uow, kind)
            if page.sort is not None:
                check_sort(page.sort, DOCUMENT_SORTS)
            rows = await repository.list_described(scope, filters, page)
            views = [DocumentView(row.document, row.product, row.cabinet, today,
                                  license_number=row.license_number) for row in rows]
            if page.sort is None:
                return Page.from_rows(views, page)
            return Page.numbered(views, page, await repository.count_visible(scope, filters))

    async def get(self, actor: Principal, kind: DocumentKind, document_id: str) -> DocumentView:
        today = self.today()
        async with self._work(read_only=True) as uow:
            found = await documents(uow, kind).get_described(document_id,
                                                              access.visible_scope(actor))
            if found is None:
                raise NotFound(f"No such {kind.label.lower()}.")
            transfers = await uow.transfers.of_document(document_id)
            named = {c.id: c.name for c in await uow.cabinets.get_many(
                sorted({t.from_cabinet_id for t in transfers} | {t.to_cabinet_id
                                                               for t in transfers}),
                access.visible_scope(actor))}
        # A certificate's license is shown by its number only, wherever that license went.
        return DocumentView(found.document, found.product, found.cabinet, today, transfers,
                            found.license_number, named)

    async def transfer(self, actor: Principal, kind: DocumentKind, document_id: str,
                       target_id: str) -> DocumentView:
        now = self._clock.now()
        async with self._work() as uow:
            scope = access.visible_scope(actor)
            repository = documents(uow, kind)
            document = await repository.get(document_id, scope, for_update=True)
            if document is None:
                raise NotFound(f"No such {kind.label.lower()}.")
            owner = access.require_visible(actor, await uow.cabinets.get(document.cabinet_id,
                                                                         scope))
            target = await uow.cabinets.get(target_id, scope)
            if target is None:
                raise NotFound("No such organisation.", field="cabinet_id")
            access.require_may_transfer(actor, owner, target)
            if document.status(now.date()) is DocumentStatus.REVOKED:
                raise Invalid("A revoked document cannot move.", field="cabinet_id")
            document.cabinet_id, document.updated_at = target.id, now
            await repository.update(document)
            await uow.transfers.add(Transfer(
                id=self._ids.new_id(), kind=kind, document_id=document.id,
                from_cabinet_id=owner.id, to_cabinet_id=target.id, at=now,
                actor_id=actor.user_id, actor_email=actor.email))
            await uow.audit.add(self._audit.entry(
                f"{kind.value}.transferred", actor, kind.value, document.id, target.id,
                number=document.number, from_cabinet_id=owner.id, to_cabinet_id=target.id))
            uow.events.record(DocumentTransferred(
                kind=kind, document_id=document.id, number=document.number,
                from_cabinet_id=owner.id, from_name=owner.name, to_cabinet_id=target.id,
                to_name=target.name))
            await uow.commit()
        return await self.get(actor, kind, document_id)

    async def transfer_targets(self, actor: Principal, kind: DocumentKind,
                               document_id: str) -> list[Cabinet]:
        """Where the actor may hand a document down to: the cabinets below its owner, or
        none (they may not transfer, or it is revoked)."""
        if not access.may_transfer(actor):
            return []
        async with self._work(read_only=True) as uow:
            document = await documents(uow, kind).get(document_id, access.visible_scope(actor))
            if document is None:
                raise NotFound(f"No such {kind.label.lower()}.")
            if document.status(self._clock.now().date()) is DocumentStatus.REVOKED:
                return []
            owner = await uow.cabinets.get(document.cabinet_id, access.visible_scope(actor))
            if owner is None:
                return []
            rows = await uow.cabinets.list_visible(access.Scope.subtree(owner.path),
                                                   PageRequest(MAX_LIMIT))
        return [row for row in rows if row.id != owner.id][:MAX_LIMIT]

    async def verify(self, number: str) -> tuple[DocumentKind, bool] | None:
        """Whether a document with this number is valid today; nothing else about it."""
        kind = DocumentKind.LICENSE if number.startswith("LIC-") else DocumentKind.CERTIFICATE
        async with self._work(read_only=True) as uow:
            # Public on purpose: the answer says only "valid" or "not".
            document = await documents(uow, kind).get_by_number(number,
                                                                access.Scope.everything())
        if document is None:
            return None
        return kind, document.status(self.today()) is DocumentStatus.ACTIVE

    async def _product_id(self, uow: UnitOfWork, product: str | None) -> str | None:
        if product is None:
            return None
        found = await uow.products.get(product) or await uow.products.get_by_code(product)
        if found is None:
            raise BadRequest("No product has this id or code.", field="product")
        return found.id

