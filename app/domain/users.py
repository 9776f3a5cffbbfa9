"""Users and the principal a request acts as."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from app.domain.cabinets import Cabinet, CabinetKind
from app.domain.errors import Invalid
from app.domain.roles import Role

MAX_EMAIL_LENGTH = 254
MAX_PASSWORD_LENGTH = 1024
# Deliberately loose: one "@", no spaces, a dot in the domain. Mail delivery is the real test.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_EMAIL = re.compile(EMAIL_PATTERN)


@dataclass
class User:
    id: str
    email: str
    # Lower-cased e-mail that carries the uniqueness; None once the user is deleted,
    # so the address can be invited again while the audit trail keeps the old row.
    email_key: str | None
    name: str
    role: Role
    cabinet_id: str
    active: bool
    password_hash: str | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None
    last_sign_in_at: datetime | None = None


# The columns a list of users sorts by (last sign-in: never signed in last).
USER_SORTS = ("name", "email", "role", "last_sign_in")


@dataclass(frozen=True)
class Principal:
    """Who a use case runs for: a signed-in user, or the operator at the command line."""

    user_id: str | None
    email: str
    role: Role
    cabinet_id: str | None
    cabinet_path: str
    session_id: str | None = None
    # The client's network address, for the audit log.
    address: str | None = None

    @classmethod
    def of(cls, user: User, cabinet: Cabinet, session_id: str | None = None,
           address: str | None = None) -> Principal:
        return cls(user.id, user.email, user.role, cabinet.id, cabinet.path, session_id, address)


# The command line acts with every right and no cabinet of its own.
SYSTEM = Principal(user_id=None, email="system", role=Role.STAFF_ADMIN, cabinet_id=None,
                   cabinet_path="/")


def email_key(email: str) -> str:
    return email.strip().lower()


def check_email(email: str) -> str:
    cleaned = email.strip()
    if len(cleaned) > MAX_EMAIL_LENGTH or not _EMAIL.match(cleaned):
        raise Invalid("This is not a valid e-mail address.", field="email")
    return cleaned


def check_password(password: str, min_length: int) -> None:
    if len(password) < min_length:
        raise Invalid(f"The password must have at least {min_length} characters.",
                      field="password")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise Invalid(f"The password must have at most {MAX_PASSWORD_LENGTH} characters.",
                      field="password")


def role_fits(role: Role, cabinet: Cabinet) -> bool:
    """Staff roles live in vendor cabinets, customer roles in customer cabinets."""
    return role.is_staff == (cabinet.kind is CabinetKind.VENDOR)


def check_role_fits_cabinet(role: Role, cabinet: Cabinet) -> None:
    if not role_fits(role, cabinet):
        raise Invalid(f"The role {role.value} does not exist in a {cabinet.kind.value} "
                      "organisation.", field="role")
