from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from adapters.postgres import to_pyformat
from adapters.sql.migrations import load_migrations, split_statements
from adapters.system import Uuid7Ids
from app.domain.access import permissions
from app.domain.cabinets import Cabinet, CabinetKind, check_name, check_parent, path_under
from app.domain.errors import Invalid
from app.domain.notifications import _IDS, notification_id
from app.domain.paging import BadCursor, Page, PageRequest, decode_cursor, encode_cursor
from app.domain.reminders import EXPIRED, ReminderPolicy, when
from app.domain.roles import Role
from app.domain.users import Principal, check_email, check_password, email_key
from tests.unit.test_access import NOW, TREE


def test_ids_sort_by_creation_and_are_uuid_v7() -> None:
    ids = Uuid7Ids()
    made = [ids.new_id() for _ in range(5000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert all(i[14] == "7" and i[19] in "89ab" for i in made)


def test_cursors_round_trip_and_refuse_anything_else() -> None:
    last = Uuid7Ids().new_id()
    assert decode_cursor(encode_cursor(last)) == last
    for bad in ("", "garbage", encode_cursor("not-an-id"), "%%%"):
        with pytest.raises(BadCursor):
            decode_cursor(bad)


def test_a_page_says_whether_more_exist() -> None:
    class Item:
        def __init__(self, id: str) -> None:
            self.id = id

    rows = [Item(f"0000000{i}-0000-7000-8000-000000000000") for i in range(4)]
    page = Page.from_rows(rows, PageRequest(limit=3))
    assert [i.id for i in page.items] == [r.id for r in rows[:3]]
    assert page.next_cursor is not None and decode_cursor(page.next_cursor) == rows[2].id
    assert Page.from_rows(rows[:3], PageRequest(limit=3)).next_cursor is None


def test_names_are_tidied_and_bounded() -> None:
    assert check_name("  Acme \n  Labs ") == "Acme Labs"
    for bad in ("", "   ", "x" * 201):
        with pytest.raises(Invalid):
            check_name(bad)


def test_kinds_do_not_mix_in_the_tree() -> None:
    with pytest.raises(Invalid):
        check_parent(CabinetKind.VENDOR, TREE["own"])
    check_parent(CabinetKind.CUSTOMER, TREE["own"])
    check_parent(CabinetKind.CUSTOMER, None)


def test_email_rules() -> None:
    assert check_email("  Ann@Example.COM ") == "Ann@Example.COM"
    assert email_key(" Ann@Example.COM") == "ann@example.com"
    for bad in ("ann", "ann@", "@example.com", "a b@example.com", "ann@example"):
        with pytest.raises(Invalid):
            check_email(bad)


def test_password_rules() -> None:
    check_password("x" * 10, 10)
    with pytest.raises(Invalid):
        check_password("x" * 9, 10)
    with pytest.raises(Invalid):
        check_password("x" * 1025, 10)


def test_roles_only_gain_permissions_going_up() -> None:
    def of(role: Role) -> set[str]:
        kind = CabinetKind.VENDOR if role.is_staff else CabinetKind.CUSTOMER
        home = Cabinet(id="home", name="Home", kind=kind, parent_id=None,
                       path=path_under(None, "home"), external_id=None, created_at=NOW,
                       updated_at=NOW)
        return set(permissions(Principal("u", "u@x.test", role, home.id, home.path), home))

    ranked = [of(r) for r in Role]
    assert ranked[0] < ranked[1] < ranked[3]
    assert ranked[0] < ranked[2] < ranked[3]
    assert "products:manage" in ranked[3] and "products:manage" not in ranked[2]


def test_portable_sql_placeholders_become_pyformat() -> None:
    assert to_pyformat("SELECT * FROM t WHERE a = :a AND b LIKE :b") == (
        "SELECT * FROM t WHERE a = %(a)s AND b LIKE %(b)s")
    assert to_pyformat("SELECT '100%' AS p, :x") == "SELECT '100%%' AS p, %(x)s"


def test_migrations_split_into_statements_and_are_numbered() -> None:
    assert split_statements("-- c\nCREATE TABLE a (x INT);\nCREATE INDEX i ON a (x);\n") == (
        "CREATE TABLE a (x INT)", "CREATE INDEX i ON a (x)")
    for dialect in ("sqlite", "postgres"):
        migrations = load_migrations(dialect)
        assert [m.version for m in migrations] == sorted({m.version for m in migrations})
        assert migrations[0].label == "0001_foundation"
    # A dialect's own file stands in for the portable one.
    by_label = {m.label: m for m in load_migrations("postgres")}
    assert "text_pattern_ops" in by_label["0002_path_prefix_index"].statements[0]
    assert {m.label: m for m in load_migrations("sqlite")}[
        "0002_path_prefix_index"].statements == ()


def test_one_time_tokens_never_reach_the_access_log() -> None:
    from app.web.app import _SECRET_QUERY

    logged = _SECRET_QUERY.sub(r"\1=[redacted]", "/password/set?token=s3cr3t&x=1")
    assert logged == "/password/set?token=[redacted]&x=1"


@pytest.mark.parametrize(("target", "kept"), [
    ("/cabinets/1?x=2", True), ("/", True), ("//evil.example", False), ("/\\evil", False),
    ("/\t/evil.example", False), ("http://evil.example", False), ("cabinets", False),
    ("", False), (None, False)])
def test_safe_next_keeps_only_local_paths(target: str | None, kept: bool) -> None:
    from app.web.pages.render import safe_next

    assert safe_next(target) == (target if kept else "/")


def test_codes_and_buckets_take_no_trailing_newline() -> None:
    from app.domain.products import check_bucket, check_code

    for bad in ("dbguard\n", "db guard"):
        with pytest.raises(Invalid):
            check_code(bad)
    with pytest.raises(Invalid):
        check_bucket("releases\n")


# --- expiry reminders ----------------------------------------------------------------------

def test_reminder_stages_run_nearest_first_and_windows_cover_their_days() -> None:
    policy = ReminderPolicy((7, 30, 1, 7), lookback_days=3)
    assert policy.stages == [EXPIRED, 1, 7, 30]
    today = date(2030, 3, 10)
    assert policy.window(30, today) == (today, date(2030, 4, 9))
    assert policy.window(1, today) == (today, date(2030, 3, 11))
    assert policy.window(EXPIRED, today) == (date(2030, 3, 7), date(2030, 3, 9))
    assert [when(today + timedelta(days=d), today) for d in (0, 1, 2)] == [
        "today", "tomorrow", "in 2 days"]
    with pytest.raises(Invalid):
        ReminderPolicy((7, 0))


# --- notifications ---------------------------------------------------------------------------

def test_each_recipients_notification_id_is_the_uuid5_of_batch_and_user() -> None:
    batch_ids = [str(uuid.uuid4()) for _ in range(20)] + ["", "x", "0191c2f0-7c4e-7abc"]
    user_ids = [str(uuid.uuid4()) for _ in range(20)] + ["ü", "a/b"]
    made = {(b, u): notification_id(b, u) for b in batch_ids for u in user_ids}
    assert all(made[(b, u)] == str(uuid.uuid5(_IDS, f"{b}/{u}")) for b, u in made)
    assert all(uuid.UUID(n).version == 5 for n in made.values())
    assert len(set(made.values())) == len(made)  # one each
    assert notification_id(batch_ids[0], user_ids[0]) == made[(batch_ids[0], user_ids[0])]


def test_checks_report_every_broken_rule_at_once() -> None:
    from app.domain.cabinets import check_name
    from app.domain.errors import Checks, InvalidFields
    from app.domain.products import check_bucket, check_prefix

    checks = Checks()
    assert checks(check_bucket, "releases") == "releases"
    checks.done()  # nothing broken: nothing raised
    checks = Checks()
    checks(check_name, "   ")
    checks(check_prefix, "a/../b")
    checks(check_bucket, "releases")
    with pytest.raises(InvalidFields) as broken:
        checks.done()
    assert [each.field for each in broken.value.each()] == ["name", "prefix"]
    one = Checks()
    one(check_prefix, "a/../b")
    with pytest.raises(Invalid) as alone:
        one.done()
    assert not isinstance(alone.value, InvalidFields) and alone.value.field == "prefix"


def test_an_audit_row_names_every_detail_and_starts_no_formula() -> None:
    from datetime import UTC, datetime

    from app.domain.audit import AUDIT_COLUMNS, AuditEntry, audit_row

    entry = AuditEntry(id="e", at=datetime(2026, 12, 6, 9, 30, tzinfo=UTC), action="user.created",
                       actor_id="u", actor_email="=2+3@example.test", object_type="user",
                       object_id="-1", cabinet_id=None, address="192.0.2.7",
                       details={"role": "customer_user", "email": "a@example.test"})
    row = audit_row(entry)
    assert len(row) == len(AUDIT_COLUMNS)
    assert row[2] == "'=2+3@example.test" and row[4] == "'-1"
    assert row[7] == "email: a@example.test; role: customer_user"


def test_numbered_pages_start_at_their_offset_and_carry_the_count() -> None:
    from app.domain.paging import Sort

    request = PageRequest.numbered(50, 3, Sort("number"))
    assert (request.offset, request.limit, request.after) == (100, 50, None)
    assert PageRequest.numbered(50, 0, Sort("number")).offset == 0
    rows = [Cabinet(id=str(i), name="c", kind=CabinetKind.CUSTOMER, parent_id=None,
                    path=f"/{i}/", external_id=None, created_at=NOW, updated_at=NOW)
            for i in range(51)]
    page = Page.numbered(rows, request, 151)
    assert len(page.items) == 50 and page.total == 151 and page.next_cursor is None


def test_audit_details_read_as_people_read_them() -> None:
    from app.domain.audit import described

    assert described({"name": ["Old", "New"], "external_id": [None, "B-1"]}) == \
        "name: Old → New; external_id: — → B-1"
    assert described(["status Resolved", "assignee"]) == "status Resolved, assignee"
    assert described({"a": {"b": 1}}) == "a: b: 1" and described(3) == "3"
