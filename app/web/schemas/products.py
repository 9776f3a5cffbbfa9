"""Bodies of the product catalogue API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from app.domain.products import (
    BUCKET_PATTERN,
    CODE_PATTERN,
    MAX_DESCRIPTION_LENGTH,
    MAX_PREFIX_LENGTH,
    Product,
)
from app.web.schemas.common import Body, Name, NewName, Out, reject_null


class ProductOut(Out):
    id: str
    code: str
    name: str
    description: str
    parameters: dict[str, Any]
    bucket: str
    prefix: str
    active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, product: Product) -> ProductOut:
        return cls(**vars(product))


class ProductPage(Out):
    items: list[ProductOut]
    next_cursor: str | None


PARAMETERS = "Free JSON: editions, platforms, anything to show or template on."


class ProductCreate(Body):
    code: str = Field(pattern=CODE_PATTERN, description="Unique slug; cannot change later.")
    name: str = Name
    description: str = Field("", max_length=MAX_DESCRIPTION_LENGTH)
    parameters: dict[str, Any] = Field(default_factory=dict, description=PARAMETERS)
    bucket: str = Field(pattern=BUCKET_PATTERN, description="Bucket of the releases.")
    prefix: str | None = Field(None, max_length=MAX_PREFIX_LENGTH,
                               description="Key prefix of the releases; default `<code>/`.")
    active: bool = True


class ProductPatch(Body):
    """Fields left out stay unchanged."""

    name: NewName | SkipJsonSchema[None] = None
    description: str | SkipJsonSchema[None] = Field(None, max_length=MAX_DESCRIPTION_LENGTH)
    parameters: dict[str, Any] | SkipJsonSchema[None] = None
    bucket: Annotated[str, Field(pattern=BUCKET_PATTERN)] | SkipJsonSchema[None] = None
    prefix: str | SkipJsonSchema[None] = Field(None, max_length=MAX_PREFIX_LENGTH)
    active: bool | SkipJsonSchema[None] = None

    check_fields = field_validator("name", "description", "parameters", "bucket", "prefix",
                                   "active", mode="before")(reject_null)
