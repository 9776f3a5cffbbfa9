"""Licenses and support certificates: what a cabinet holds, for how long, and its history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from app.domain.errors import Invalid

NUMBER_PATTERN = r"^(LIC|CRT)-\d{4}-\d{6}$"


class DocumentKind(StrEnum):
    LICENSE = "license"
    CERTIFICATE = "certificate"

    @property
    def prefix(self) -> str:
        return "LIC" if self is DocumentKind.LICENSE else "CRT"

    @property
    def label(self) -> str:
        return "License" if self is DocumentKind.LICENSE else "Support certificate"


class DocumentStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"

    @property
    def label(self) -> str:
        """As customers read it: the same words in filters, badges and reports."""
        return "Not yet active" if self is DocumentStatus.PENDING else self.value.capitalize()


@dataclass(kw_only=True)
class IssuedDocument:
    """What licenses and support certificates share."""

    id: str
    number: str
    product_id: str
    cabinet_id: str
    valid_from: date
    # None: perpetual (licenses only).
    valid_to: date | None
    revoked_at: datetime | None
    # The billing system's id of the purchase item it came from.
    purchase_item: str | None
    created_at: datetime
    updated_at: datetime

    def status(self, today: date) -> DocumentStatus:
        if self.revoked_at is not None:
            return DocumentStatus.REVOKED
        if self.valid_to is not None and self.valid_to < today:
            return DocumentStatus.EXPIRED
        if self.valid_from > today:
            return DocumentStatus.PENDING
        return DocumentStatus.ACTIVE

    def days_left(self, today: date) -> int | None:
        """Whole days until the last valid day (0 on it); None when perpetual."""
        return None if self.valid_to is None else (self.valid_to - today).days


@dataclass(kw_only=True)
class License(IssuedDocument):
    edition: str
    seats: int

    kind = DocumentKind.LICENSE


@dataclass(kw_only=True)
class Certificate(IssuedDocument):
    level: str
    license_id: str | None = None

    kind = DocumentKind.CERTIFICATE


@dataclass(frozen=True)
class Transfer:
    id: str
    kind: DocumentKind
    document_id: str
    from_cabinet_id: str
    to_cabinet_id: str
    at: datetime
    actor_id: str | None
    actor_email: str | None


@dataclass(frozen=True)
class DocumentFilter:
    """Narrows a list; `today` decides what counts as expired."""

    today: date
    product_id: str | None = None
    status: DocumentStatus | None = None
    expires_before: date | None = None
    # Part of the number or of the holder's name.
    search: str = ""


# The columns a list of documents sorts by: number, product name, holder name, end date
# (perpetual last).
DOCUMENT_SORTS = ("number", "product", "holder", "valid_to")


def number_for(kind: DocumentKind, year: int, serial: int) -> str:
    return f"{kind.prefix}-{year:04d}-{serial:06d}"


def check_validity(valid_from: date, valid_to: date | None, kind: DocumentKind) -> None:
    if valid_to is None and kind is DocumentKind.CERTIFICATE:
        raise Invalid("A support certificate needs an end date.", field="valid_to")
    if valid_to is not None and valid_to < valid_from:
        raise Invalid("The end date lies before the start date.", field="valid_to")


def check_seats(seats: int) -> int:
    if not 1 <= seats <= 1_000_000:
        raise Invalid("Seats must be between 1 and 1,000,000.", field="seats")
    return seats
