"""Roles and their order. What each may do is app.domain.access."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    CUSTOMER_USER = "customer_user"
    CUSTOMER_ADMIN = "customer_admin"
    STAFF = "staff"
    STAFF_ADMIN = "staff_admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def is_staff(self) -> bool:
        return self in (Role.STAFF, Role.STAFF_ADMIN)

    def outranks_or_equals(self, other: Role) -> bool:
        return self.rank >= other.rank

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


_RANK = {Role.CUSTOMER_USER: 0, Role.CUSTOMER_ADMIN: 1, Role.STAFF: 2, Role.STAFF_ADMIN: 3}
