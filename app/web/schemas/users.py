"""Bodies of the users API."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from app.domain.cabinets import MAX_NAME_LENGTH
from app.domain.roles import Role
from app.domain.users import EMAIL_PATTERN, MAX_EMAIL_LENGTH, User
from app.web.schemas.common import Body, NewName, Out, reject_null


class UserOut(Out):
    id: str
    email: str
    name: str
    role: Role
    cabinet_id: str
    active: bool
    has_password: bool
    created_at: datetime
    updated_at: datetime
    last_sign_in_at: datetime | None = Field(description="Null: never signed in.")

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(id=user.id, email=user.email, name=user.name, role=user.role,
                   cabinet_id=user.cabinet_id, active=user.active,
                   has_password=user.password_hash is not None,
                   created_at=user.created_at, updated_at=user.updated_at,
                   last_sign_in_at=user.last_sign_in_at)


class UserPage(Out):
    items: list[UserOut]
    next_cursor: str | None


class UserCreate(Body):
    email: str = Field(max_length=MAX_EMAIL_LENGTH, pattern=EMAIL_PATTERN)
    name: str = Field("", max_length=MAX_NAME_LENGTH)
    role: Role = Role.CUSTOMER_USER


class UserCreated(Out):
    user: UserOut
    set_password_url: str = Field(description="One-time link for the user to set a password.")
    set_password_expires_at: datetime


class UserPatch(Body):
    """Fields left out stay unchanged."""

    name: NewName | SkipJsonSchema[None] = None
    role: Role | SkipJsonSchema[None] = None
    active: bool | SkipJsonSchema[None] = None

    check_fields = field_validator("name", "role", "active", mode="before")(reject_null)


class PasswordLinkOut(Out):
    email: str = Field(description="Where the link went.")
    expires_at: datetime
    new_account: bool = Field(description="The user never set a password: the e-mail "
                                          "invites them again.")
