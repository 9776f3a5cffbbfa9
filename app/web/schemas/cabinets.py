"""Bodies of the organisations (cabinets) API."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from app.domain.cabinets import Cabinet, CabinetKind
from app.web.schemas.common import Body, Name, NewName, Out, reject_null


class CabinetOut(Out):
    id: str
    name: str
    kind: CabinetKind
    parent_id: str | None
    external_id: str | None
    contact_email: str | None = Field(
        description="The billing contact, as the purchases feed names it.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, cabinet: Cabinet) -> CabinetOut:
        return cls(id=cabinet.id, name=cabinet.name, kind=cabinet.kind,
                   parent_id=cabinet.parent_id, external_id=cabinet.external_id,
                   contact_email=cabinet.contact_email, created_at=cabinet.created_at,
                   updated_at=cabinet.updated_at)


class CabinetPage(Out):
    items: list[CabinetOut]
    next_cursor: str | None


class CabinetCreate(Body):
    name: str = Name
    kind: CabinetKind = CabinetKind.CUSTOMER
    parent_id: str | None = Field(None, description="Omit (staff admins) for a top-level cabinet.")
    external_id: str | None = Field(None, min_length=1, max_length=100,
                                    description="Billing id; staff admins only.")


class CabinetPatch(Body):
    """Fields left out stay unchanged; null clears `external_id` or moves to the top."""

    name: NewName | SkipJsonSchema[None] = None
    external_id: str | None = Field(None, min_length=1, max_length=100,
                                    description="Staff admins only.")
    parent_id: str | None = Field(None, description="Move the cabinet; staff admins only.")

    check_name = field_validator("name", mode="before")(reject_null)


class CabinetRef(Out):
    id: str
    name: str
    kind: CabinetKind

    @classmethod
    def of(cls, cabinet: Cabinet) -> CabinetRef:
        return cls(id=cabinet.id, name=cabinet.name, kind=cabinet.kind)
