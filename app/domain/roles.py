"""Roles, their order and what each may do."""

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

    @property
    def is_admin(self) -> bool:
        return self in (Role.CUSTOMER_ADMIN, Role.STAFF_ADMIN)

    def outranks_or_equals(self, other: Role) -> bool:
        return self.rank >= other.rank

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


_RANK = {Role.CUSTOMER_USER: 0, Role.CUSTOMER_ADMIN: 1, Role.STAFF: 2, Role.STAFF_ADMIN: 3}


class Permission(StrEnum):
    CABINETS_READ = "cabinets:read"
    CABINETS_READ_ALL = "cabinets:read_all"
    CABINETS_CREATE_CHILD = "cabinets:create_child"
    CABINETS_MANAGE_ALL = "cabinets:manage_all"
    USERS_READ = "users:read"
    USERS_MANAGE = "users:manage"
    USERS_MANAGE_ALL = "users:manage_all"
    PRODUCTS_READ = "products:read"
    PRODUCTS_MANAGE = "products:manage"
    LICENSES_READ = "licenses:read"
    LICENSES_TRANSFER = "licenses:transfer"
    REPORTS_OWN = "reports:own"
    REPORTS_ANY = "reports:any"


_CUSTOMER_USER = {
    Permission.CABINETS_READ,
    Permission.USERS_READ,
    Permission.PRODUCTS_READ,
    Permission.LICENSES_READ,
    Permission.REPORTS_OWN,
}
_CUSTOMER_ADMIN = _CUSTOMER_USER | {
    Permission.CABINETS_CREATE_CHILD,
    Permission.USERS_MANAGE,
    Permission.LICENSES_TRANSFER,
}
_STAFF = _CUSTOMER_USER | {Permission.CABINETS_READ_ALL, Permission.REPORTS_ANY}
_STAFF_ADMIN = (
    _STAFF
    | _CUSTOMER_ADMIN
    | {Permission.CABINETS_MANAGE_ALL, Permission.USERS_MANAGE_ALL, Permission.PRODUCTS_MANAGE}
)

PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.CUSTOMER_USER: frozenset(_CUSTOMER_USER),
    Role.CUSTOMER_ADMIN: frozenset(_CUSTOMER_ADMIN),
    Role.STAFF: frozenset(_STAFF),
    Role.STAFF_ADMIN: frozenset(_STAFF_ADMIN),
}


def permissions_of(role: Role) -> list[str]:
    return sorted(p.value for p in PERMISSIONS[role])
