"""Bodies of the licenses and certificates API."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.domain.licensing import Certificate, DocumentStatus, License
from app.services.licensing import DocumentView
from app.web.reports import FORMAT_DESCRIPTION
from app.web.schemas.common import Body, ListQuery, Out


class ProductRef(Out):
    id: str
    code: str
    name: str


class OwnerRef(Out):
    id: str
    name: str


class TransferOut(Out):
    from_cabinet_id: str
    to_cabinet_id: str
    at: datetime
    by: str | None = Field(description="E-mail of whoever moved it.")


class DocumentOut(Out):
    id: str
    number: str
    product: ProductRef
    cabinet: OwnerRef
    valid_from: date
    valid_to: date | None = Field(description="Last valid day; null: perpetual.")
    status: DocumentStatus
    days_left: int | None = Field(description="Days until valid_to; null when perpetual.")
    revoked_at: datetime | None
    purchase_item: str | None = Field(description="The billing system's purchase item id.")
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def common(view: DocumentView) -> dict[str, Any]:
        document = view.document
        return {
            "id": document.id, "number": document.number,
            "product": ProductRef(id=view.product.id, code=view.product.code,
                                  name=view.product.name),
            "cabinet": OwnerRef(id=view.cabinet.id, name=view.cabinet.name),
            "valid_from": document.valid_from, "valid_to": document.valid_to,
            "status": view.status, "days_left": view.days_left,
            "revoked_at": document.revoked_at, "purchase_item": document.purchase_item,
            "created_at": document.created_at, "updated_at": document.updated_at,
        }


class LicenseOut(DocumentOut):
    edition: str
    seats: int

    @classmethod
    def of(cls, view: DocumentView) -> LicenseOut:
        assert isinstance(view.document, License)
        return cls(**cls.common(view), edition=view.document.edition, seats=view.document.seats)


class CertificateOut(DocumentOut):
    level: str
    license_id: str | None

    @classmethod
    def of(cls, view: DocumentView) -> CertificateOut:
        assert isinstance(view.document, Certificate)
        return cls(**cls.common(view), level=view.document.level,
                   license_id=view.document.license_id)


def _transfers(view: DocumentView) -> list[TransferOut]:
    return [TransferOut(from_cabinet_id=t.from_cabinet_id, to_cabinet_id=t.to_cabinet_id,
                        at=t.at, by=t.actor_email) for t in view.transfers]


class LicenseDetail(LicenseOut):
    transfers: list[TransferOut] = Field(description="Moves between cabinets, oldest first.")

    @classmethod
    def of(cls, view: DocumentView) -> LicenseDetail:
        return cls(**LicenseOut.of(view).__dict__, transfers=_transfers(view))


class CertificateDetail(CertificateOut):
    transfers: list[TransferOut] = Field(description="Moves between cabinets, oldest first.")

    @classmethod
    def of(cls, view: DocumentView) -> CertificateDetail:
        return cls(**CertificateOut.of(view).__dict__, transfers=_transfers(view))


class LicensePage(Out):
    items: list[LicenseOut]
    next_cursor: str | None


class CertificatePage(Out):
    items: list[CertificateOut]
    next_cursor: str | None


def iso_day(value: Any) -> Any:
    """Days are YYYY-MM-DD; pydantic alone would also read "0" as 1 January 1970."""
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("must be a day as YYYY-MM-DD")
    return value


class DocumentListQuery(ListQuery):
    product: str | None = Field(None, max_length=100, description="A product id or code.")
    status: DocumentStatus | None = None
    cabinet_id: str | None = Field(
        None, max_length=100, description="This cabinet and those below it (must be visible).")
    expires_before: date | None = Field(None, description="valid_to before this day.")
    include_children: bool = Field(True, description="false: the organisation itself only "
                                                     "(`cabinet_id`, else the caller's).")
    format: Literal["json", "csv", "xlsx", "pdf"] | None = Field(
        None, description=FORMAT_DESCRIPTION)

    check_day = field_validator("expires_before", mode="before")(iso_day)


class CertificateFormatQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    format: Literal["json", "pdf"] | None = Field(
        None, description="json (default) or pdf; without it, `Accept: application/pdf` "
                          "also asks for the PDF.")


class LicenseFormatQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    format: Literal["json", "pdf", "lic"] | None = Field(
        None, description="json (default), pdf, or lic: the signed license file (compact "
                          "JWS) for the software to check offline against "
                          "/.well-known/license-keys.json.")


class TransferIn(Body):
    cabinet_id: str = Field(min_length=1, max_length=100,
                            description="A cabinet below the current owner.")
