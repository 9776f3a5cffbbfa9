"""The purchases feed's event and its outcome."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from app.domain.licensing import DocumentKind
from app.domain.purchases import (
    PurchaseAction,
    PurchaseCustomer,
    PurchaseEvent,
    PurchaseItem,
    PurchaseType,
)
from app.domain.users import MAX_EMAIL_LENGTH
from app.web.schemas.common import Body, Name, Out


class PurchaseCustomerIn(Body):
    external_id: str = Field(min_length=1, max_length=100, description="Customer's billing id.")
    name: str = Name
    parent_external_id: str | None = Field(None, min_length=1, max_length=100)
    contact_email: str | None = Field(None, max_length=MAX_EMAIL_LENGTH)


class PurchaseItemIn(Body):
    external_id: str = Field(min_length=1, max_length=100, description="Item's billing id.")
    kind: DocumentKind
    product_code: str | None = Field(None, max_length=63, description="New items only.")
    edition: str | None = Field(None, min_length=1, max_length=100, description="Licenses.")
    seats: int | None = Field(None, ge=1, le=1_000_000, description="Licenses.")
    level: str | None = Field(None, min_length=1, max_length=50, description="Certificates.")
    valid_from: date | None = None
    valid_to: date | None = Field(None, description="Null: a perpetual license.")
    license_external_id: str | None = Field(
        None, min_length=1, max_length=100,
        description="The license (its item id) a support certificate is for.")


class PurchaseEventIn(Body):
    event_id: str = Field(min_length=1, max_length=200)
    type: PurchaseType
    occurred_at: datetime
    customer: PurchaseCustomerIn
    items: list[PurchaseItemIn] = Field(min_length=1, max_length=500)

    def to_domain(self) -> PurchaseEvent:
        return PurchaseEvent(
            event_id=self.event_id, type=self.type, occurred_at=self.occurred_at,
            customer=PurchaseCustomer(**dict(self.customer)),
            items=tuple(PurchaseItem(**dict(item)) for item in self.items))


class PurchaseCabinetOut(Out):
    id: str
    name: str
    external_id: str | None
    created: bool = Field(description="The event created this customer's cabinet.")


class PurchaseDocumentOut(Out):
    id: str
    number: str
    purchase_item: str
    action: PurchaseAction


class PurchaseOutcomeOut(Out):
    event_id: str
    type: str
    cabinet: PurchaseCabinetOut
    licenses: list[PurchaseDocumentOut]
    certificates: list[PurchaseDocumentOut]
