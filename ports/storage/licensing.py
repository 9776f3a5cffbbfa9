"""Licenses and support certificates, their transfers, and the purchase events that
make them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from app.domain.access import Scope
from app.domain.cabinets import Cabinet
from app.domain.licensing import Certificate, DocumentFilter, License, Transfer
from app.domain.paging import PageRequest
from app.domain.products import Product

D = TypeVar("D", License, Certificate)


@dataclass(frozen=True)
class Described(Generic[D]):
    """A document with what a reader sees beside it, read in one go."""

    document: D
    product: Product
    cabinet: Cabinet
    # A support certificate tied to a license: that license's number, wherever it is held.
    license_number: str | None = None

    @property
    def id(self) -> str:
        return self.document.id


class DocumentRepository(Protocol[D]):
    """Licenses, or support certificates: the same questions of either table."""

    async def add(self, *documents: D) -> None:
        """Insert them all or none; DuplicateKey("<table>.number") or
        ("<table>.purchase_item") when one is taken."""

    async def get(self, document_id: str, scope: Scope, *, for_update: bool = False) -> D | None:
        """One held by a cabinet in scope; `for_update` locks it until the unit of work ends."""

    async def get_by_number(self, number: str, scope: Scope) -> D | None: ...

    async def by_purchase_items(self, purchase_items: list[str], scope: Scope,
                                *, for_update: bool = False) -> dict[str, D]:
        """Purchase item -> the document issued for it, of those held in scope;
        `for_update` locks them until the unit of work ends."""

    async def numbers_taken(self, numbers: list[str]) -> set[str]:
        """Those of the numbers some document of this kind has."""

    async def numbers(self, document_ids: list[str]) -> dict[str, str]:
        """Id -> number of those that exist, wherever they are held (a certificate names
        the license it covers by its number)."""

    async def list_visible(self, scope: Scope, filters: DocumentFilter,
                           page: PageRequest) -> list[D]:
        """Held by cabinets in scope and passing the filters, paged in id order or, for a
        numbered page, in the order of one of `DOCUMENT_SORTS`."""

    async def count_visible(self, scope: Scope, filters: DocumentFilter) -> int:
        """How many `list_visible` pages through."""

    async def get_described(self, document_id: str, scope: Scope) -> Described[D] | None:
        """`get`, with its product, its owner and (a certificate) its license's number."""

    async def list_described(self, scope: Scope, filters: DocumentFilter,
                             page: PageRequest) -> list[Described[D]]:
        """`list_visible`, each with what `get_described` adds."""

    async def update(self, document: D) -> None:
        """Write the owner, the validity, the revocation and the kind's own fields."""


class TransferRepository(Protocol):
    async def add(self, transfer: Transfer) -> None: ...

    async def of_document(self, document_id: str) -> list[Transfer]:
        """Its history, oldest first."""


class PurchaseEventRepository(Protocol):
    async def claim(self, event_id: str, type_: str, occurred_at: datetime,
                    received_at: datetime) -> bool:
        """Record the event id; False if it was recorded before. A concurrent claim of the
        same id waits until the first one's unit of work ends, then answers False if that
        one committed, True if it rolled back."""

    async def record_outcome(self, event_id: str, outcome: dict[str, Any]) -> None: ...

    async def outcome(self, event_id: str) -> dict[str, Any] | None: ...
