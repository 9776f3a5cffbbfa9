"""The access rule: which cabinets a principal reaches and what it may do there.

Every query for tenant data takes the `Scope` computed here, and every decision about what
a principal may do is one of the `may_*` functions below: use cases enforce it with the
`require_*` twin (Forbidden with the reason), pages ask it in advance through
`capabilities` and `in_cabinet`, and `/me` lists it as `permissions`. Outside a principal's
scope an object does not exist for them (404); inside it, a refused action is 403.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.cabinets import Cabinet, CabinetKind
from app.domain.errors import Forbidden, Invalid, NotFound
from app.domain.roles import Role
from app.domain.scope import Scope as Scope  # every query takes one: here with its rule
from app.domain.users import Principal, User, role_fits

# ---- what a principal sees


def sees_everyone(principal: Principal) -> bool:
    """The vendor's staff see every customer; a customer sees its own subtree."""
    return principal.role.is_staff


def visible_scope(principal: Principal) -> Scope:
    """Staff see every cabinet; a customer sees their own cabinet and its descendants."""
    if sees_everyone(principal):
        return Scope.everything()
    return Scope.subtree(principal.cabinet_path)


def narrowed(principal: Principal, scope: Scope, cabinet: Cabinet | None,
             include_children: bool) -> Scope:
    """A list's scope asked for one organisation (`cabinet`, already known to be in
    `scope`; else the principal's own): that organisation and those below it, or with
    `include_children` off the one organisation. Staff asking for no organisation keep
    everything."""
    if cabinet is not None:
        return Scope.subtree(cabinet.path) if include_children and not scope.exact \
            else Scope.cabinet(cabinet.path)
    if include_children or scope.path_prefix is None:
        return scope
    return Scope.cabinet(principal.cabinet_path)


def require_visible(principal: Principal, cabinet: Cabinet | None,
                    what: str = "cabinet") -> Cabinet:
    if cabinet is None or not visible_scope(principal).contains(cabinet.path):
        raise NotFound(f"No such {what}.")
    return cabinet


def sees_inactive_products(principal: Principal) -> bool:
    """Customers see the products on sale; staff also those withdrawn, and where their
    releases lie."""
    return sees_everyone(principal)


def sees_all_releases(principal: Principal) -> bool:
    """Staff see every product's releases; a customer those of products it holds a
    license for."""
    return sees_everyone(principal)


# ---- organisations and their users


def managed_scope(principal: Principal) -> Scope | None:
    """Where a principal manages users and child cabinets: a staff admin everywhere, a
    customer admin in their own subtree, anyone else nowhere."""
    if principal.role is Role.STAFF_ADMIN:
        return Scope.everything()
    if principal.role is Role.CUSTOMER_ADMIN:
        return Scope.subtree(principal.cabinet_path)
    return None


def _manages(principal: Principal, cabinet: Cabinet) -> bool:
    scope = managed_scope(principal)
    return scope is not None and scope.contains(cabinet.path)


def may_create_child(principal: Principal, parent: Cabinet) -> bool:
    return _manages(principal, parent)


def require_may_create_child(principal: Principal, parent: Cabinet) -> None:
    if not may_create_child(principal, parent):
        raise Forbidden("You may not create organisations here.")


def may_restructure(principal: Principal) -> bool:
    """Top-level cabinets, moves, billing ids, documents by hand: staff admins only."""
    return principal.role is Role.STAFF_ADMIN


def require_may_create_root(principal: Principal) -> None:
    if not may_restructure(principal):
        raise Forbidden("Only staff administrators create top-level organisations.",
                        field="parent_id")


def may_edit_cabinet(principal: Principal, cabinet: Cabinet) -> bool:
    """Staff admins edit any cabinet; a customer admin edits the cabinets below their own."""
    if may_restructure(principal):
        return True
    return _manages(principal, cabinet) and cabinet.path != principal.cabinet_path


def require_may_edit_cabinet(principal: Principal, cabinet: Cabinet) -> None:
    if not may_edit_cabinet(principal, cabinet):
        raise Forbidden("You may not change this organisation.")


def may_manage_users(principal: Principal, cabinet: Cabinet) -> bool:
    return _manages(principal, cabinet)


def require_may_manage_users(principal: Principal, cabinet: Cabinet) -> None:
    if not may_manage_users(principal, cabinet):
        raise Forbidden("You may not manage the users of this organisation.")


def may_assign(principal: Principal, role: Role) -> bool:
    """Nobody hands out a role above their own."""
    return principal.role.outranks_or_equals(role)


def require_may_assign(principal: Principal, role: Role) -> None:
    if not may_assign(principal, role):
        raise Forbidden(f"You may not give the role {role.value}.", field="role")


def assignable_roles(principal: Principal, cabinet: Cabinet) -> tuple[Role, ...]:
    """The roles a principal may give the users of this cabinet (none if they do not
    manage its users)."""
    if not may_manage_users(principal, cabinet):
        return ()
    return tuple(role for role in Role if may_assign(principal, role)
                 and role_fits(role, cabinet))


def may_change_user(principal: Principal, cabinet: Cabinet, user: User) -> bool:
    return may_manage_users(principal, cabinet) and principal.role.outranks_or_equals(user.role)


def require_may_change_user(principal: Principal, cabinet: Cabinet, user: User) -> None:
    require_may_manage_users(principal, cabinet)
    if not may_change_user(principal, cabinet, user):
        raise Forbidden("You may not change a user whose role is above yours.")


# ---- licenses, certificates and downloads


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
        raise Invalid("Licenses and certificates belong to customer organisations.",
                      field="cabinet_id")
    if principal.role is Role.CUSTOMER_ADMIN and not target.path.startswith(owner.path):
        raise Invalid("A document can only be handed down to an organisation below its owner.",
                      field="cabinet_id")


def may_see_downloads(principal: Principal) -> bool:
    """Customer admins see their subtree's download history; staff see everyone's."""
    return principal.role is not Role.CUSTOMER_USER


def require_may_issue_by_hand(principal: Principal) -> None:
    """Licenses and certificates outside the purchases feed (trials, replacements)."""
    if not may_restructure(principal):
        raise Forbidden("Only staff administrators issue, extend or revoke by hand.")


def may_read_audit(principal: Principal) -> bool:
    """Customer admins read the audit log of their subtree; staff all of it."""
    return principal.user_id is not None and principal.role is not Role.CUSTOMER_USER


def require_may_read_audit(principal: Principal) -> None:
    if not may_read_audit(principal):
        raise Forbidden("Only administrators read the audit log.")


def may_subscribe_reports(principal: Principal) -> bool:
    """Customer admins have reports of their subtree sent to them; staff of anyone's."""
    return principal.user_id is not None and principal.role is not Role.CUSTOMER_USER


def require_may_subscribe_reports(principal: Principal) -> None:
    if not may_subscribe_reports(principal):
        raise Forbidden("Only administrators have reports sent to them.")


def require_may_see_downloads(principal: Principal) -> None:
    if not may_see_downloads(principal):
        raise Forbidden("Only administrators see the download history.")


# ---- the catalogue


def may_manage_products(principal: Principal) -> bool:
    """Adding and changing products, and registering, withdrawing and scanning for their
    releases."""
    return principal.role is Role.STAFF_ADMIN


def require_may_manage_products(principal: Principal) -> None:
    if not may_manage_products(principal):
        raise Forbidden("Only staff administrators add and change products.")


# ---- notifications


def may_announce(principal: Principal) -> bool:
    return sees_everyone(principal)


def require_may_announce(principal: Principal) -> None:
    if not may_announce(principal):
        raise Forbidden("Only the vendor's staff send announcements.")


def may_read_mail_log(principal: Principal) -> bool:
    """The e-mail the portal sent (and to whom) is the vendor's to see."""
    return sees_everyone(principal)


def require_may_read_mail_log(principal: Principal) -> None:
    if not may_read_mail_log(principal):
        raise Forbidden("Only the vendor's staff see the e-mail the portal sends.")


# ---- support requests


def support_scope(principal: Principal) -> Scope:
    """Staff see every request; a customer admin those of their organisation and below; a
    customer user those of their own organisation (which the ones they opened belong to)."""
    if sees_everyone(principal):
        return Scope.everything()
    if principal.role is Role.CUSTOMER_ADMIN:
        return Scope.subtree(principal.cabinet_path)
    return Scope.cabinet(principal.cabinet_path)


def may_open_request(principal: Principal) -> bool:
    """Customers open requests; the vendor's staff answer them."""
    return not sees_everyone(principal) and principal.user_id is not None


def require_may_open_request(principal: Principal) -> None:
    if not may_open_request(principal):
        raise Forbidden("Support requests are opened by customers; staff answer them.")


def may_edit_request(principal: Principal, author_id: str | None, cabinet: Cabinet) -> bool:
    """Subject, description, closing and reopening: the author, or an admin of the
    request's organisation."""
    return principal.user_id is not None and (
        principal.user_id == author_id or (principal.role is Role.CUSTOMER_ADMIN
                                           and _manages(principal, cabinet)))


def require_may_edit_request(principal: Principal, author_id: str | None,
                             cabinet: Cabinet) -> None:
    if not may_edit_request(principal, author_id, cabinet):
        raise Forbidden("Only its author and the organisation's administrators change a "
                        "request.")


def may_work_requests(principal: Principal) -> bool:
    """Status, priority, assignee and internal notes are the vendor's staff's."""
    return sees_everyone(principal)


def require_may_work_requests(principal: Principal, field: str | None = None) -> None:
    if not may_work_requests(principal):
        raise Forbidden("Only the vendor's staff change this.", field=field)


def may_change_comment(principal: Principal, author_id: str | None) -> bool:
    """One's own comments; staff any."""
    return may_work_requests(principal) or (principal.user_id is not None
                                            and principal.user_id == author_id)


def require_may_change_comment(principal: Principal, author_id: str | None) -> None:
    if not may_change_comment(principal, author_id):
        raise Forbidden("You may change your own comments only.")


# ---- asked in advance, for pages and /me


@dataclass(frozen=True)
class Capabilities:
    """What a principal may do anywhere, for pages to offer or leave out; each is the rule
    its use case enforces."""

    sees_everyone: bool
    sees_catalog_internals: bool
    manage_products: bool
    see_downloads: bool
    transfer: bool
    announce: bool
    read_mail_log: bool
    open_requests: bool
    work_requests: bool
    subscribe_reports: bool
    # Top-level organisations, moves and billing ids.
    restructure: bool
    read_audit: bool
    issue_by_hand: bool


def capabilities(principal: Principal) -> Capabilities:
    return Capabilities(
        sees_everyone=sees_everyone(principal),
        sees_catalog_internals=sees_inactive_products(principal),
        manage_products=may_manage_products(principal),
        see_downloads=may_see_downloads(principal),
        transfer=may_transfer(principal),
        announce=may_announce(principal),
        read_mail_log=may_read_mail_log(principal),
        open_requests=may_open_request(principal),
        work_requests=may_work_requests(principal),
        subscribe_reports=may_subscribe_reports(principal),
        restructure=may_restructure(principal),
        read_audit=may_read_audit(principal),
        issue_by_hand=may_restructure(principal))


@dataclass(frozen=True)
class CabinetCapabilities:
    """What a principal may do on one cabinet they see."""

    principal: Principal
    cabinet: Cabinet
    manage_users: bool
    create_child: bool
    edit: bool
    roles: tuple[Role, ...]

    def may_change(self, user: User) -> bool:
        """Whether to offer deactivating or removing this user of the cabinet (never
        oneself)."""
        return (user.id != self.principal.user_id
                and may_change_user(self.principal, self.cabinet, user))


def in_cabinet(principal: Principal, cabinet: Cabinet) -> CabinetCapabilities:
    return CabinetCapabilities(
        principal, cabinet, manage_users=may_manage_users(principal, cabinet),
        create_child=may_create_child(principal, cabinet),
        edit=may_edit_cabinet(principal, cabinet),
        roles=assignable_roles(principal, cabinet))


def permissions(principal: Principal, own: Cabinet) -> list[str]:
    """What `/me` lists: the rules above, as answered for the principal in their own
    cabinet (`*_all`: in every cabinet)."""
    can, here, managed = capabilities(principal), in_cabinet(principal, own), \
        managed_scope(principal)
    granted = {
        "cabinets:read": True,
        "cabinets:read_all": can.sees_everyone,
        "cabinets:create_child": here.create_child,
        "cabinets:manage_all": may_restructure(principal),
        "users:read": True,
        "users:manage": here.manage_users,
        "users:manage_all": managed is not None and managed.path_prefix is None,
        "products:read": True,
        "products:manage": can.manage_products,
        "licenses:read": True,
        "licenses:transfer": can.transfer,
        "downloads:read": can.see_downloads,
        "notifications:announce": can.announce,
        "mail:read": can.read_mail_log,
        "issues:read": True,
        "issues:work": can.work_requests,
    }
    return sorted(name for name, allowed in granted.items() if allowed)
