"""Purchase events from the billing system, as the portal understands them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from app.domain.licensing import DocumentKind


class PurchaseType(StrEnum):
    COMPLETED = "purchase.completed"
    RENEWED = "purchase.renewed"
    REFUNDED = "purchase.refunded"


class PurchaseAction(StrEnum):
    """What an event did to one of its items."""

    CREATED = "created"
    RENEWED = "renewed"
    REVOKED = "revoked"


@dataclass(frozen=True)
class PurchaseCustomer:
    external_id: str
    name: str
    parent_external_id: str | None = None
    contact_email: str | None = None


@dataclass(frozen=True)
class PurchaseItem:
    external_id: str
    kind: DocumentKind
    product_code: str | None = None
    edition: str | None = None
    seats: int | None = None
    level: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    # A support certificate may name the license (its purchase item) it supports.
    license_external_id: str | None = None


@dataclass(frozen=True)
class PurchaseEvent:
    event_id: str
    type: PurchaseType
    occurred_at: datetime
    customer: PurchaseCustomer
    items: tuple[PurchaseItem, ...]

    def depends_on(self) -> set[str]:
        """What the event reads or writes by billing id: the event, its customer and the
        customer's parent, its items and the licenses its certificates cover. Two events
        that share none can be applied in either order, or at once."""
        keys = {f"event:{self.event_id}", f"customer:{self.customer.external_id}"}
        if self.customer.parent_external_id:
            keys.add(f"customer:{self.customer.parent_external_id}")
        for item in self.items:
            keys.add(f"item:{item.external_id}")
            if item.license_external_id:
                keys.add(f"item:{item.license_external_id}")
        return keys


@dataclass
class PurchaseOutcome:
    """What an event did; stored with the event, and answered again for a repeat."""

    event_id: str
    type: str
    cabinet: dict[str, Any]
    licenses: list[dict[str, Any]] = field(default_factory=list)
    certificates: list[dict[str, Any]] = field(default_factory=list)

    def add(self, kind: DocumentKind, document_id: str, number: str, purchase_item: str,
            action: PurchaseAction) -> None:
        target = self.licenses if kind is DocumentKind.LICENSE else self.certificates
        target.append({"id": document_id, "number": number, "purchase_item": purchase_item,
                       "action": action.value})

    def as_data(self) -> dict[str, Any]:
        """As stored and answered: its fields hold plain data already, so nothing is copied
        (`dataclasses.asdict` copied every item's dict, a fifth of a large event's time)."""
        return dict(vars(self))
