"""The access rule on a table of cases, without storage or HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.domain import access
from app.domain.cabinets import Cabinet, CabinetKind
from app.domain.errors import Forbidden, NotFound
from app.domain.roles import Role
from app.domain.users import Principal, User

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def cabinet(path: str, kind: CabinetKind = CabinetKind.CUSTOMER) -> Cabinet:
    ids = path.strip("/").split("/")
    return Cabinet(id=ids[-1], name=ids[-1], kind=kind,
                   parent_id=ids[-2] if len(ids) > 1 else None, path=path, external_id=None,
                   created_at=NOW, updated_at=NOW)


TREE = {
    "own": cabinet("/p/own/"),
    "child": cabinet("/p/own/child/"),
    "grandchild": cabinet("/p/own/child/g/"),
    "parent": cabinet("/p/"),
    "sibling": cabinet("/p/sib/"),
    # A path that only shares a text prefix with "own" must not count as inside it.
    "lookalike": cabinet("/p/own2/"),
    "foreign": cabinet("/f/"),
}


def principal(role: Role) -> Principal:
    home = "/v/" if role.is_staff else "/p/own/"
    return Principal("u", "u@example.test", role, home.strip("/").split("/")[-1], home)


def outcome(check, *args) -> str:  # type: ignore[no-untyped-def]
    try:
        check(*args)
    except NotFound:
        return "404"
    except Forbidden:
        return "403"
    return "ok"


VISIBLE = {
    Role.CUSTOMER_USER: {"own", "child", "grandchild"},
    Role.CUSTOMER_ADMIN: {"own", "child", "grandchild"},
    Role.STAFF: set(TREE),
    Role.STAFF_ADMIN: set(TREE),
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("name", list(TREE))
def test_visibility(role: Role, name: str) -> None:
    expected = "ok" if name in VISIBLE[role] else "404"
    assert outcome(access.require_visible, principal(role), TREE[name]) == expected


MANAGES_USERS = {
    Role.CUSTOMER_USER: set(),
    Role.CUSTOMER_ADMIN: {"own", "child", "grandchild"},
    Role.STAFF: set(),
    Role.STAFF_ADMIN: set(TREE),
}
EDITS = {
    Role.CUSTOMER_USER: set(),
    Role.CUSTOMER_ADMIN: {"child", "grandchild"},
    Role.STAFF: set(),
    Role.STAFF_ADMIN: set(TREE),
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("name", list(TREE))
def test_managing(role: Role, name: str) -> None:
    who, target = principal(role), TREE[name]
    assert (outcome(access.require_may_manage_users, who, target) == "ok") == (
        name in MANAGES_USERS[role])
    assert (outcome(access.require_may_create_child, who, target) == "ok") == (
        name in MANAGES_USERS[role])
    assert (outcome(access.require_may_edit_cabinet, who, target) == "ok") == (name in EDITS[role])


@pytest.mark.parametrize(("actor", "role", "allowed"), [
    (Role.CUSTOMER_ADMIN, Role.CUSTOMER_USER, True),
    (Role.CUSTOMER_ADMIN, Role.CUSTOMER_ADMIN, True),
    (Role.CUSTOMER_ADMIN, Role.STAFF, False),
    (Role.CUSTOMER_ADMIN, Role.STAFF_ADMIN, False),
    (Role.STAFF_ADMIN, Role.STAFF_ADMIN, True),
    (Role.CUSTOMER_USER, Role.CUSTOMER_ADMIN, False),
])
def test_nobody_hands_out_a_role_above_their_own(actor: Role, role: Role, allowed: bool) -> None:
    assert (outcome(access.require_may_assign, principal(actor), role) == "ok") is allowed


def test_a_customer_admin_cannot_change_a_higher_ranked_user() -> None:
    staff_user = User(id="s", email="s@x.test", email_key="s@x.test", name="S",
                      role=Role.STAFF_ADMIN, cabinet_id="own", active=True, password_hash=None,
                      created_at=NOW, updated_at=NOW)
    assert outcome(access.require_may_change_user, principal(Role.CUSTOMER_ADMIN),
                   TREE["own"], staff_user) == "403"


def test_only_staff_admins_restructure_and_create_top_level() -> None:
    assert [access.may_restructure(principal(r)) for r in Role] == [False, False, False, True]
    assert outcome(access.require_may_create_root, principal(Role.CUSTOMER_ADMIN)) == "403"
    assert outcome(access.require_may_create_root, principal(Role.STAFF_ADMIN)) == "ok"


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("name", list(TREE))
def test_what_pages_offer_is_what_the_use_cases_allow(role: Role, name: str) -> None:
    who, target = principal(role), TREE[name]
    here = access.in_cabinet(who, target)
    assert here.manage_users == (outcome(access.require_may_manage_users, who, target) == "ok")
    assert here.create_child == (outcome(access.require_may_create_child, who, target) == "ok")
    assert here.edit == (outcome(access.require_may_edit_cabinet, who, target) == "ok")
    assert set(here.roles) == {r for r in Role if here.manage_users and r.is_staff is False
                               and outcome(access.require_may_assign, who, r) == "ok"}
    can = access.capabilities(who)
    assert can.manage_products == (outcome(access.require_may_manage_products, who) == "ok")
    assert can.see_downloads == (outcome(access.require_may_see_downloads, who) == "ok")
    assert can.announce == (outcome(access.require_may_announce, who) == "ok")
    assert can.read_mail_log == (outcome(access.require_may_read_mail_log, who) == "ok")


def test_nobody_is_offered_changing_themselves_or_someone_above() -> None:
    admin = principal(Role.CUSTOMER_ADMIN)
    here = access.in_cabinet(admin, TREE["own"])

    def user(user_id: str, role: Role) -> User:
        return User(id=user_id, email=f"{user_id}@x.test", email_key=f"{user_id}@x.test",
                    name=user_id, role=role, cabinet_id="own", active=True,
                    password_hash=None, created_at=NOW, updated_at=NOW)

    assert here.may_change(user("other", Role.CUSTOMER_USER))
    assert here.may_change(user("peer", Role.CUSTOMER_ADMIN))
    assert not here.may_change(user(admin.user_id or "", Role.CUSTOMER_ADMIN))
    assert not here.may_change(user("staff", Role.STAFF))
