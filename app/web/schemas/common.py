"""What every request and response body shares: strict bodies, frozen answers, lists."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from app.domain.cabinets import MAX_NAME_LENGTH
from app.domain.paging import DEFAULT_LIMIT, MAX_LIMIT

Name = Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=r"\S")
# A name a change may leave out: the rule on the text itself, where the document shows it
# (set on a `str | None` field, the pattern was checked but left out of the document).
NewName = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=r"\S")]
ExternalId = Field(min_length=1, max_length=100)


class Body(BaseModel):
    """A request body: strict JSON types, and unknown fields refused (no mass assignment)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)




class ListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page.")
    cursor: str | None = Field(None, max_length=200,
                               description="`next_cursor` of the previous page.")


def reject_null(value: Any) -> Any:
    """For a field a PATCH may leave out but not set to null."""
    if value is None:
        raise ValueError("may be left out but not null")
    return value
