"""Bodies of sign-in, tokens, set-password and /me."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.domain.roles import Role
from app.domain.users import MAX_EMAIL_LENGTH, MAX_PASSWORD_LENGTH
from app.web.schemas.cabinets import CabinetOut, CabinetRef
from app.web.schemas.common import Body, Out
from app.web.schemas.users import UserOut


class LoginIn(Body):
    email: str = Field(min_length=1, max_length=MAX_EMAIL_LENGTH)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class RefreshIn(Body):
    refresh_token: str = Field(min_length=1, max_length=4096)


class RevokeIn(Body):
    refresh_token: str | None = Field(
        None, min_length=1, max_length=4096,
        description="The login to end; without it, the login of the bearer token.")


class TokenOut(Out):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Seconds the access token lives.")


class PasswordSetIn(Body):
    token: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class PasswordForgotIn(Body):
    email: str = Field(min_length=1, max_length=MAX_EMAIL_LENGTH)


class PasswordForgotOut(Out):
    detail: str = Field(description="The same for every address: it tells nobody which "
                                    "addresses have accounts.")


class MyCabinet(CabinetOut):
    ancestors: list[CabinetRef] = Field(description="From the top of the tree down.")
    children: list[CabinetRef]


class MeOut(Out):
    user: UserOut
    cabinet: MyCabinet
    role: Role
    permissions: list[str]
