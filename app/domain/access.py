"""The access rule: which cabinets a principal reaches and what it may do there.

Every query for tenant data takes the `Scope` computed here, and every decision about
managing a cabinet or its users is one of the functions below. Outside a principal's
scope an object does not exist for them (404); inside it, a refused action is 403.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.cabinets import Cabinet, CabinetKind
from app.domain.errors import Forbidden, Invalid, NotFound
from app.domain.roles import Role
from app.domain.users import Principal, User


@dataclass(frozen=True)
class Scope:
    """Every cabinet (`path_prefix` None) or the subtree whose paths start with the prefix."""

    path_prefix: str | None

    @classmethod
    def everything(cls) -> Scope:
        return cls(None)

    @classmethod
    def subtree(cls, path: str) -> Scope:
        return cls(path)

    def contains(self, cabinet_path: str) -> bool:
        return self.path_prefix is None or cabinet_path.startswith(self.path_prefix)


def visible_scope(principal: Principal) -> Scope:
    """Staff see every cabinet; a customer sees their own cabinet and its descendants."""
    if principal.role.is_staff:
        return Scope.everything()
    return Scope.subtree(principal.cabinet_path)


def require_visible(principal: Principal, cabinet: Cabinet | None,
                    what: str = "cabinet") -> Cabinet:
    if cabinet is None or not visible_scope(principal).contains(cabinet.path):
        raise NotFound(f"No such {what}.")
    return cabinet


def _manages(principal: Principal, cabinet: Cabinet) -> bool:
    if principal.role is Role.STAFF_ADMIN:
        return True
    return principal.role is Role.CUSTOMER_ADMIN and cabinet.path.startswith(principal.cabinet_path)


def require_may_create_child(principal: Principal, parent: Cabinet) -> None:
    if not _manages(principal, parent):
        raise Forbidden("You may not create cabinets here.")


def require_may_create_root(principal: Principal) -> None:
    if principal.role is not Role.STAFF_ADMIN:
        raise Forbidden("Only staff administrators create top-level cabinets.", field="parent_id")


def require_may_edit_cabinet(principal: Principal, cabinet: Cabinet) -> None:
    """Staff admins edit any cabinet; a customer admin edits the cabinets below their own."""
    if principal.role is Role.STAFF_ADMIN:
        return
    if (principal.role is Role.CUSTOMER_ADMIN and cabinet.path.startswith(principal.cabinet_path)
            and cabinet.path != principal.cabinet_path):
        return
    raise Forbidden("You may not change this cabinet.")


def may_restructure(principal: Principal) -> bool:
    """Moving cabinets and setting billing ids is for staff admins only."""
    return principal.role is Role.STAFF_ADMIN


def require_may_manage_users(principal: Principal, cabinet: Cabinet) -> None:
    if not _manages(principal, cabinet):
        raise Forbidden("You may not manage the users of this cabinet.")


def require_may_assign(principal: Principal, role: Role) -> None:
    """Nobody hands out a role above their own."""
    if not principal.role.outranks_or_equals(role):
        raise Forbidden(f"You may not give the role {role.value}.", field="role")


def may_transfer(principal: Principal) -> bool:
    return principal.role in (Role.CUSTOMER_ADMIN, Role.STAFF_ADMIN)


def require_may_transfer(principal: Principal, owner: Cabinet, target: Cabinet) -> None:
    """A customer admin hands a license or certificate down, from its owner to a cabinet
    below it, inside their own subtree; a staff admin moves it to any customer cabinet.
    Both cabinets must be visible already (else 404 before this)."""
    if not may_transfer(principal):
        raise Forbidden("You may not transfer licenses or certificates.")
    if target.id == owner.id:
        raise Invalid("The document belongs to this cabinet already.", field="cabinet_id")
    if target.kind is not CabinetKind.CUSTOMER:
        raise Invalid("Licenses and certificates belong to customer cabinets.",
                      field="cabinet_id")
    if principal.role is Role.CUSTOMER_ADMIN and not target.path.startswith(owner.path):
        raise Invalid("A document can only be handed down to a cabinet below its owner.",
                      field="cabinet_id")


def may_see_downloads(principal: Principal) -> bool:
    """Customer admins see their subtree's download history; staff see everyone's."""
    return principal.role is not Role.CUSTOMER_USER


def require_may_see_downloads(principal: Principal) -> None:
    if not may_see_downloads(principal):
        raise Forbidden("Only administrators see the download history.")


def may_manage_products(principal: Principal) -> bool:
    return principal.role is Role.STAFF_ADMIN


def require_may_manage_products(principal: Principal) -> None:
    if not may_manage_products(principal):
        raise Forbidden("Only staff administrators add and change products.")


def sees_inactive_products(principal: Principal) -> bool:
    """Customers see the products on sale; staff also those withdrawn."""
    return principal.role.is_staff


def require_may_change_user(principal: Principal, cabinet: Cabinet, user: User) -> None:
    require_may_manage_users(principal, cabinet)
    if not principal.role.outranks_or_equals(user.role):
        raise Forbidden("You may not change a user whose role is above yours.")
