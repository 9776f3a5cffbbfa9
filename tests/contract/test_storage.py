"""The storage port's contract, run against every adapter on a real database.

The PostgreSQL database is shared by the whole session, so every test makes its own randomly
named objects and asserts only on those (listings are scoped to a subtree the test created).
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import ExitStack, asynccontextmanager, closing
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

import psycopg2
import pytest

from adapters.postgres import PostgresStorage
from adapters.sql.migrations import load_migrations
from adapters.sqlite import SqliteStorage
from adapters.system import Uuid7Ids
from app.domain.access import Scope
from app.domain.audit import AuditEntry, AuditFilter
from app.domain.cabinets import CABINET_SORTS, Cabinet, CabinetKind, path_under
from app.domain.licensing import (
    DOCUMENT_SORTS,
    Certificate,
    DocumentFilter,
    DocumentKind,
    DocumentStatus,
    License,
    Transfer,
)
from app.domain.paging import HasId, PageRequest, Sort
from app.domain.products import Product
from app.domain.roles import Role
from app.domain.sessions import LoginSession
from app.domain.users import USER_SORTS, User
from ports.storage import Described, DuplicateKey, StorageUnavailable
from tests.pg import temporary_database

Adapter = SqliteStorage | PostgresStorage
T = TypeVar("T", bound=HasId)

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
EVERYTHING = Scope.everything()
IDS = Uuid7Ids()
# Not UTC on purpose: values must come back equal (and aware) whatever zone they were given in.
T0 = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
SECOND = timedelta(seconds=1)
ALL_MIGRATIONS = [migration.label for migration in load_migrations("sqlite")]
# Document numbers from a counter: random ones met each other now and then (a test adding
# 230 documents collided in a few runs of a hundred). One database serves a test session.
_NUMBERS = itertools.count(1)


def unique(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}"


def new_cabinet(parent: Cabinet | None = None, *, kind: CabinetKind | None = None,
                external_id: str | None = None, at: datetime = T0) -> Cabinet:
    cabinet_id = IDS.new_id()
    return Cabinet(id=cabinet_id, name=unique("cabinet"),
                   kind=kind or (parent.kind if parent else CabinetKind.CUSTOMER),
                   parent_id=parent.id if parent else None, path=path_under(parent, cabinet_id),
                   external_id=external_id, created_at=at, updated_at=at)


def new_user(cabinet: Cabinet, *, role: Role = Role.CUSTOMER_USER, active: bool = True,
             password_hash: str | None = "$argon2id$v=19$fake", email: str | None = None,
             at: datetime = T0) -> User:
    address = email or f"{unique('User')}@Example.test"
    return User(id=IDS.new_id(), email=address, email_key=address.lower(), name=unique("user"),
                role=role, cabinet_id=cabinet.id, active=active, password_hash=password_hash,
                created_at=at, updated_at=at)


def new_session(user: User, *, at: datetime = T0) -> LoginSession:
    return LoginSession(id=IDS.new_id(), user_id=user.id, created_at=at,
                        expires_at=at + timedelta(days=30))


def new_entry(cabinet: Cabinet | None, *, object_id: str | None = None,
              details: dict[str, Any] | None = None) -> AuditEntry:
    return AuditEntry(id=IDS.new_id(), at=T0, action="cabinet.updated", actor_id=IDS.new_id(),
                      actor_email=f"{unique('actor')}@example.test", object_type="cabinet",
                      object_id=object_id or (cabinet.id if cabinet else None),
                      cabinet_id=cabinet.id if cabinet else None, address="192.0.2.7",
                      details=details or {})


async def add_all(storage: Adapter, *objects: Cabinet | User | LoginSession | AuditEntry) -> None:
    """Add and commit, in order (parents before children)."""
    async with storage.unit_of_work() as uow:
        for item in objects:
            if isinstance(item, Cabinet):
                await uow.cabinets.add(item)
            elif isinstance(item, User):
                await uow.users.add(item)
            elif isinstance(item, LoginSession):
                await uow.sessions.add(item)
            else:
                await uow.audit.add(item)
        await uow.commit()


async def stored_cabinet(storage: Adapter, cabinet_id: str,
                         scope: Scope = EVERYTHING) -> Cabinet | None:
    async with storage.unit_of_work() as uow:
        return await uow.cabinets.get(cabinet_id, scope)


async def stored_user(storage: Adapter, user_id: str, scope: Scope = EVERYTHING) -> User | None:
    async with storage.unit_of_work() as uow:
        return await uow.users.get(user_id, scope)


async def user_with_session(storage: Adapter) -> tuple[User, LoginSession]:
    cabinet = new_cabinet()
    user = new_user(cabinet)
    session = new_session(user)
    await add_all(storage, cabinet, user, session)
    return user, session


async def walk_pages(fetch: Callable[[PageRequest], Awaitable[list[T]]], limit: int) -> list[T]:
    """Every item of a keyset-paged listing, checking each page holds at most limit + 1 rows."""
    items: list[T] = []
    after: str | None = None
    while True:
        rows = await fetch(PageRequest(limit=limit, after=after))
        assert len(rows) <= limit + 1
        items.extend(rows[:limit])
        if len(rows) <= limit:
            return items
        after = rows[limit - 1].id


def ids(items: list[Cabinet] | list[User]) -> list[str]:
    return [item.id for item in items]


def adapter_for(backend: str, tmp_path: Path, request: pytest.FixtureRequest,
                impatient: bool = False) -> Adapter:
    """The adapter on the test's database; `impatient` ones give up on a connection fast
    (and the PostgreSQL one has a single connection, to run out of it easily)."""
    if backend == "sqlite":
        return SqliteStorage(tmp_path / "db.sqlite3",
                             **({"busy_timeout_ms": 300} if impatient else {}))
    dsn = request.getfixturevalue("pg_dsn")
    if impatient:
        return PostgresStorage(dsn, pool_max=1, timeout_seconds=0.3)
    return PostgresStorage(dsn)


@asynccontextmanager
async def migrated(backend: str, tmp_path: Path,
                   request: pytest.FixtureRequest) -> AsyncIterator[Adapter]:
    """An open adapter of the backend on a migrated database, closed afterwards."""
    adapter = adapter_for(backend, tmp_path, request)
    await adapter.open()
    try:
        await adapter.migrate()
        yield adapter
    finally:
        await adapter.close()


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Adapter]:
    async with migrated(request.param, tmp_path, request) as adapter:
        yield adapter


class BlankDatabase:
    """An empty database of the backend under test, for the migration tests."""

    def __init__(self, backend: str, location: str) -> None:
        self.backend = backend
        self.location = location
        self.adapters: list[Adapter] = []

    async def open_storage(self) -> Adapter:
        adapter: Adapter = (SqliteStorage(Path(self.location)) if self.backend == "sqlite"
                            else PostgresStorage(self.location))
        await adapter.open()
        self.adapters.append(adapter)
        return adapter

    def recorded_migrations(self) -> list[tuple[int, str]]:
        """The rows of schema_migrations, read behind the adapter's back."""
        query = "SELECT version, name FROM schema_migrations ORDER BY version"
        if self.backend == "sqlite":
            with closing(sqlite3.connect(self.location)) as conn:
                return [(int(v), str(n)) for v, n in conn.execute(query).fetchall()]
        with closing(psycopg2.connect(self.location)) as conn, conn.cursor() as cursor:
            cursor.execute(query)
            return [(int(v), str(n)) for v, n in cursor.fetchall()]


@pytest.fixture(params=BACKENDS)
async def blank(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlankDatabase]:
    with ExitStack() as stack:
        if request.param == "sqlite":
            location = str(tmp_path / "blank.sqlite3")
        else:
            location = stack.enter_context(
                temporary_database("portal_blank", request.getfixturevalue("pg_dsn")))
        database = BlankDatabase(request.param, location)
        try:
            yield database
        finally:
            for adapter in database.adapters:
                await adapter.close()


# --- migrations ------------------------------------------------------------------------------

async def test_a_blank_database_gets_every_migration_once(blank: BlankDatabase) -> None:
    storage = await blank.open_storage()
    assert await storage.pending_migrations() == ALL_MIGRATIONS

    assert await storage.migrate() == ALL_MIGRATIONS
    assert await storage.pending_migrations() == []
    assert await storage.migrate() == []
    recorded = blank.recorded_migrations()
    assert [f"{version:04d}_{name}" for version, name in recorded] == ALL_MIGRATIONS

    another_process = await blank.open_storage()
    assert await another_process.pending_migrations() == []
    assert await another_process.migrate() == []
    assert blank.recorded_migrations() == recorded


async def test_concurrent_migrations_apply_each_migration_once(blank: BlankDatabase) -> None:
    first, second = await blank.open_storage(), await blank.open_storage()

    results = await asyncio.gather(first.migrate(), second.migrate())

    assert sorted(results) == [[], ALL_MIGRATIONS]
    assert len(blank.recorded_migrations()) == len(ALL_MIGRATIONS)


async def test_pending_migrations_while_another_process_migrates(blank: BlankDatabase) -> None:
    """A process starting with auto_migrate off checks the schema while another runs
    `portal migrate`: every check must answer, before or after the migration."""
    migrating, checking = await blank.open_storage(), await blank.open_storage()
    migration = asyncio.create_task(migrating.migrate())

    answers = []
    while not migration.done():
        answers.append(await checking.pending_migrations())
        await asyncio.sleep(0.002)

    assert await migration == ALL_MIGRATIONS
    assert all(answer in ([], ALL_MIGRATIONS) for answer in answers)
    assert await checking.pending_migrations() == []


async def test_migrate_on_a_migrated_database_applies_nothing(storage: Adapter) -> None:
    assert await storage.migrate() == []
    assert await storage.pending_migrations() == []


# --- unit of work ----------------------------------------------------------------------------

class Boom(Exception):
    pass


async def test_leaving_without_commit_rolls_back(storage: Adapter) -> None:
    cabinet = new_cabinet()
    async with storage.unit_of_work() as uow:
        await uow.cabinets.add(cabinet)
        assert await uow.cabinets.get(cabinet.id, EVERYTHING) == cabinet

    assert await stored_cabinet(storage, cabinet.id) is None


async def test_commit_makes_work_durable(storage: Adapter) -> None:
    cabinet = new_cabinet()
    async with storage.unit_of_work() as uow:
        await uow.cabinets.add(cabinet)
        await uow.commit()

    assert await stored_cabinet(storage, cabinet.id) == cabinet


async def test_work_after_commit_needs_its_own_commit(storage: Adapter) -> None:
    kept, dropped, kept_later = new_cabinet(), new_cabinet(), new_cabinet()
    async with storage.unit_of_work() as uow:
        await uow.cabinets.add(kept)
        await uow.commit()
        await uow.cabinets.add(dropped)

    async with storage.unit_of_work() as uow:
        await uow.cabinets.add(kept_later)
        await uow.commit()
        await uow.commit()

    assert await stored_cabinet(storage, kept.id) == kept
    assert await stored_cabinet(storage, dropped.id) is None
    assert await stored_cabinet(storage, kept_later.id) == kept_later


async def test_an_exception_rolls_back_and_propagates(storage: Adapter) -> None:
    committed, uncommitted, lost = new_cabinet(), new_cabinet(), new_cabinet()
    with pytest.raises(Boom):
        async with storage.unit_of_work() as uow:
            await uow.cabinets.add(lost)
            raise Boom
    with pytest.raises(Boom):
        async with storage.unit_of_work() as uow:
            await uow.cabinets.add(committed)
            await uow.commit()
            await uow.cabinets.add(uncommitted)
            raise Boom

    assert await stored_cabinet(storage, lost.id) is None
    assert await stored_cabinet(storage, committed.id) == committed
    assert await stored_cabinet(storage, uncommitted.id) is None


async def test_a_read_only_unit_of_work_reads_what_is_committed_and_cannot_commit(
        storage: Adapter) -> None:
    cabinet = new_cabinet()
    async with storage.unit_of_work() as uow:
        await uow.cabinets.add(cabinet)
        await uow.commit()

    async with storage.unit_of_work(read_only=True) as uow:
        assert await uow.cabinets.get(cabinet.id, EVERYTHING) == cabinet
        with pytest.raises(RuntimeError, match="read-only"):
            await uow.commit()
        with pytest.raises(RuntimeError, match="read-only"):
            await uow.try_lock("a lock needs a transaction to live in")


async def test_work_after_a_read_only_unit_of_work_is_still_a_transaction(
        storage: Adapter) -> None:
    # The connection a read used goes back to the pool outside any transaction and the
    # next unit of work on it still begins one: leaving it without commit undoes its work.
    for _ in range(3):
        async with storage.unit_of_work(read_only=True) as uow:
            await uow.cabinets.get("absent", EVERYTHING)
        with pytest.raises(Boom):
            async with storage.unit_of_work(read_only=True) as uow:
                await uow.cabinets.get("absent", EVERYTHING)
                raise Boom
        lost = new_cabinet()
        async with storage.unit_of_work() as uow:
            await uow.cabinets.add(lost)
        assert await stored_cabinet(storage, lost.id) is None


# --- cabinets --------------------------------------------------------------------------------

async def test_cabinet_round_trips_every_field(storage: Adapter) -> None:
    vendor = new_cabinet(kind=CabinetKind.VENDOR, external_id=unique("billing"))
    child = new_cabinet(vendor, at=T0 + timedelta(microseconds=1))
    child.updated_at = T0 + timedelta(days=3, microseconds=7)
    await add_all(storage, vendor, child)

    got_vendor = await stored_cabinet(storage, vendor.id)
    got_child = await stored_cabinet(storage, child.id)

    assert got_vendor == vendor
    assert got_child == child
    assert got_vendor is not None and got_child is not None
    assert got_vendor.kind is CabinetKind.VENDOR
    assert got_child.kind is CabinetKind.VENDOR
    assert (got_child.parent_id, got_child.external_id) == (vendor.id, None)
    for moment in (got_vendor.created_at, got_child.created_at, got_child.updated_at):
        assert moment.utcoffset() is not None
    assert got_child.updated_at == datetime(2031, 5, 9, 5, 8, 9, 123463, tzinfo=UTC)


async def test_cabinet_outside_the_scope_is_absent(storage: Adapter) -> None:
    root = new_cabinet()
    inside, sibling = new_cabinet(root), new_cabinet(root)
    await add_all(storage, root, inside, sibling)

    assert await stored_cabinet(storage, inside.id, Scope.subtree(sibling.path)) is None
    assert await stored_cabinet(storage, root.id, Scope.subtree(inside.path)) is None
    assert await stored_cabinet(storage, inside.id, Scope.subtree(inside.path)) == inside
    assert await stored_cabinet(storage, inside.id, Scope.subtree(root.path)) == inside
    assert await stored_cabinet(storage, IDS.new_id()) is None


async def test_get_by_external_id(storage: Adapter) -> None:
    root = new_cabinet()
    billed, sibling = new_cabinet(root, external_id=unique("billing")), new_cabinet(root)
    await add_all(storage, root, billed, sibling)
    assert billed.external_id is not None

    async with storage.unit_of_work() as uow:
        assert await uow.cabinets.get_by_external_id(billed.external_id, EVERYTHING) == billed
        assert await uow.cabinets.get_by_external_id(
            billed.external_id, Scope.subtree(root.path)) == billed
        assert await uow.cabinets.get_by_external_id(
            billed.external_id, Scope.subtree(sibling.path)) is None
        assert await uow.cabinets.get_by_external_id(unique("billing"), EVERYTHING) is None


async def test_duplicate_external_id_is_a_duplicate_key(storage: Adapter) -> None:
    billing = unique("billing")
    await add_all(storage, new_cabinet(external_id=billing))
    written_first = new_cabinet()

    with pytest.raises(DuplicateKey) as raised:
        async with storage.unit_of_work() as uow:
            await uow.cabinets.add(written_first)
            await uow.cabinets.add(new_cabinet(external_id=billing))
            await uow.commit()

    assert raised.value.key == "cabinets.external_id"
    assert await stored_cabinet(storage, written_first.id) is None


async def test_update_to_a_taken_external_id_is_a_duplicate_key(storage: Adapter) -> None:
    billing = unique("billing")
    holder, other = new_cabinet(external_id=billing), new_cabinet()
    await add_all(storage, holder, other)

    other.external_id = billing
    with pytest.raises(DuplicateKey) as raised:
        async with storage.unit_of_work() as uow:
            await uow.cabinets.update(other)

    assert raised.value.key == "cabinets.external_id"
    stored = await stored_cabinet(storage, other.id)
    assert stored is not None and stored.external_id is None


async def test_list_walks_a_subtree_in_id_order(storage: Adapter) -> None:
    root = new_cabinet()
    left, right = new_cabinet(root), new_cabinet(root)
    below = [new_cabinet(left), new_cabinet(right), new_cabinet(left)]
    deepest = [new_cabinet(below[0]), new_cabinet(below[1])]
    created = [root, left, right, *below, *deepest]
    await add_all(storage, *created)
    scope = Scope.subtree(root.path)

    async with storage.unit_of_work() as uow:
        first_page = await uow.cabinets.list_visible(scope, PageRequest(limit=3))
        walked = await walk_pages(lambda page: uow.cabinets.list_visible(scope, page), limit=3)
        one_by_one = await walk_pages(lambda page: uow.cabinets.list_visible(scope, page), limit=1)
        everything = await uow.cabinets.list_visible(scope, PageRequest(limit=50))
        after_last = await uow.cabinets.list_visible(
            scope, PageRequest(limit=3, after=deepest[-1].id))

    assert ids(first_page) == sorted(ids(created))[:4]
    assert ids(walked) == sorted(ids(created))
    assert ids(one_by_one) == sorted(ids(created))
    assert everything == sorted(created, key=lambda cabinet: cabinet.id)
    assert after_last == []
    # Uuid7Ids sort by creation time, so id order is creation order.
    assert ids(walked) == ids(created)


async def test_children_are_only_the_direct_ones(storage: Adapter) -> None:
    root = new_cabinet()
    first, second = new_cabinet(root), new_cabinet(root)
    grandchild, unrelated = new_cabinet(first), new_cabinet()
    await add_all(storage, root, first, second, grandchild, unrelated)

    async with storage.unit_of_work() as uow:
        children = await uow.cabinets.children(root.id, EVERYTHING, PageRequest(limit=10))
        first_page = await uow.cabinets.children(root.id, EVERYTHING, PageRequest(limit=1))
        walked: list[Cabinet] = await walk_pages(
            lambda page: uow.cabinets.children(root.id, Scope.subtree(root.path), page), limit=1)
        of_first = await uow.cabinets.children(first.id, EVERYTHING, PageRequest())
        of_leaf = await uow.cabinets.children(grandchild.id, EVERYTHING, PageRequest())
        out_of_scope = await uow.cabinets.children(
            root.id, Scope.subtree(unrelated.path), PageRequest())

    assert children == [first, second]
    assert ids(first_page) == [first.id, second.id]
    assert ids(walked) == [first.id, second.id]
    assert of_first == [grandchild]
    assert of_leaf == []
    assert out_of_scope == []


async def test_get_many_returns_those_in_scope_in_id_order(storage: Adapter) -> None:
    root = new_cabinet()
    a, b = new_cabinet(root), new_cabinet(root)
    a_child, elsewhere = new_cabinet(a), new_cabinet()
    await add_all(storage, root, a, b, a_child, elsewhere)
    asked = [elsewhere.id, a_child.id, IDS.new_id(), b.id, root.id, a.id]

    async with storage.unit_of_work() as uow:
        in_root = await uow.cabinets.get_many(asked, Scope.subtree(root.path))
        in_a = await uow.cabinets.get_many(asked, Scope.subtree(a.path))
        anywhere = await uow.cabinets.get_many(asked, EVERYTHING)
        nothing = await uow.cabinets.get_many([], EVERYTHING)

    assert in_root == [root, a, b, a_child]
    assert in_a == [a, a_child]
    assert anywhere == [root, a, b, a_child, elsewhere]
    assert nothing == []


async def test_update_writes_name_kind_external_id_and_updated_at(storage: Adapter) -> None:
    cabinet, bystander = new_cabinet(), new_cabinet()
    await add_all(storage, cabinet, bystander)
    original = await stored_cabinet(storage, cabinet.id)

    cabinet.name = unique("renamed")
    cabinet.kind = CabinetKind.VENDOR
    cabinet.external_id = unique("billing")
    cabinet.updated_at = T0 + timedelta(hours=5)
    async with storage.unit_of_work() as uow:
        await uow.cabinets.update(cabinet)
        await uow.commit()

    assert await stored_cabinet(storage, cabinet.id) == cabinet
    assert original is not None and original.created_at == cabinet.created_at
    assert await stored_cabinet(storage, bystander.id) == bystander

    cabinet.external_id = None
    async with storage.unit_of_work() as uow:
        await uow.cabinets.update(cabinet)
        await uow.commit()
    assert await stored_cabinet(storage, cabinet.id) == cabinet


async def test_move_rewrites_the_paths_of_the_whole_subtree(storage: Adapter) -> None:
    top = new_cabinet()
    old_parent, new_parent = new_cabinet(top), new_cabinet(top)
    moved, stays = new_cabinet(old_parent), new_cabinet(old_parent)
    grandchild = new_cabinet(moved)
    great_grandchild = new_cabinet(grandchild)
    await add_all(storage, top, old_parent, new_parent, moved, stays, grandchild,
                  great_grandchild)
    at = T0 + timedelta(days=1)

    async with storage.unit_of_work() as uow:
        result = await uow.cabinets.move(moved, new_parent, at)
        await uow.commit()

    expected_path = f"{new_parent.path}{moved.id}/"
    assert (result.id, result.parent_id, result.path, result.updated_at) == (
        moved.id, new_parent.id, expected_path, at)
    assert await stored_cabinet(storage, moved.id) == result
    got_grandchild = await stored_cabinet(storage, grandchild.id)
    got_great = await stored_cabinet(storage, great_grandchild.id)
    assert got_grandchild is not None and got_great is not None
    assert got_grandchild.path == f"{expected_path}{grandchild.id}/"
    assert got_grandchild.parent_id == moved.id
    assert got_great.path == f"{expected_path}{grandchild.id}/{great_grandchild.id}/"
    assert await stored_cabinet(storage, stays.id) == stays
    assert await stored_cabinet(storage, old_parent.id) == old_parent

    under_new, under_old = Scope.subtree(new_parent.path), Scope.subtree(old_parent.path)
    assert await stored_cabinet(storage, grandchild.id, under_new) == got_grandchild
    assert await stored_cabinet(storage, grandchild.id, under_old) is None
    async with storage.unit_of_work() as uow:
        assert ids(await uow.cabinets.list_visible(under_new, PageRequest())) == [
            new_parent.id, moved.id, grandchild.id, great_grandchild.id]
        assert ids(await uow.cabinets.list_visible(under_old, PageRequest())) == [
            old_parent.id, stays.id]
        assert await uow.cabinets.children(old_parent.id, EVERYTHING, PageRequest()) == [stays]
        assert ids(await uow.cabinets.children(new_parent.id, EVERYTHING, PageRequest())) == [
            moved.id]


async def test_move_to_the_top_level(storage: Adapter) -> None:
    parent = new_cabinet()
    moved = new_cabinet(parent)
    child = new_cabinet(moved)
    await add_all(storage, parent, moved, child)

    async with storage.unit_of_work() as uow:
        result = await uow.cabinets.move(moved, None, T0 + SECOND)
        await uow.commit()

    assert (result.parent_id, result.path) == (None, f"/{moved.id}/")
    got_child = await stored_cabinet(storage, child.id, Scope.subtree(f"/{moved.id}/"))
    assert got_child is not None and got_child.path == f"/{moved.id}/{child.id}/"
    assert await stored_cabinet(storage, child.id, Scope.subtree(parent.path)) is None


async def test_an_uncommitted_move_changes_nothing(storage: Adapter) -> None:
    old_parent, new_parent = new_cabinet(), new_cabinet()
    moved = new_cabinet(old_parent)
    child = new_cabinet(moved)
    await add_all(storage, old_parent, new_parent, moved, child)

    async with storage.unit_of_work() as uow:
        await uow.cabinets.move(replace(moved), new_parent, T0 + SECOND)

    assert await stored_cabinet(storage, moved.id) == moved
    assert await stored_cabinet(storage, child.id) == child


# --- products --------------------------------------------------------------------------------

def new_product(*, active: bool = True) -> Product:
    code = unique("prod")
    return Product(id=IDS.new_id(), code=code, name=unique("Product"), description="A product",
                   bucket="releases", prefix=f"{code}/", active=active, created_at=T0,
                   updated_at=T0, parameters={"editions": ["Standard", "Enterprise"],
                                              "limits": {"seats": 50, "ha": True}})


async def test_product_round_trips_every_field(storage: Adapter) -> None:
    product = new_product()
    async with storage.unit_of_work() as uow:
        await uow.products.add(product)
        await uow.commit()
    async with storage.unit_of_work() as uow:
        assert await uow.products.get(product.id) == product
        assert await uow.products.get_by_code(product.code) == product
        assert await uow.products.get(IDS.new_id()) is None
        with pytest.raises(DuplicateKey) as taken:
            await uow.products.add(replace(new_product(), code=product.code))
    assert taken.value.key == "products.code"


async def test_product_update_keeps_the_code(storage: Adapter) -> None:
    product = new_product()
    async with storage.unit_of_work() as uow:
        await uow.products.add(product)
        await uow.commit()
    changed = replace(product, code="ignored", name="Renamed", active=False, prefix="x/",
                      parameters={"new": 1}, updated_at=T0 + SECOND)
    async with storage.unit_of_work() as uow:
        await uow.products.update(changed)
        await uow.commit()
    async with storage.unit_of_work() as uow:
        assert await uow.products.get(product.id) == replace(changed, code=product.code)


async def test_product_pages_leave_out_inactive_unless_asked(storage: Adapter) -> None:
    made = [new_product(active=n % 2 == 0) for n in range(5)]
    async with storage.unit_of_work() as uow:
        for product in made:
            await uow.products.add(product)
        await uow.commit()
    ours = {p.id for p in made}

    async def listed(include_inactive: bool) -> list[str]:
        async with storage.unit_of_work() as uow:
            found = await walk_pages(lambda page: uow.products.list_page(
                page, include_inactive=include_inactive), limit=2)
        return [p.id for p in found if p.id in ours]

    assert await listed(True) == [p.id for p in made]
    assert await listed(False) == [p.id for p in made if p.active]


# --- licenses, certificates and transfers ----------------------------------------------------

TODAY = date(2031, 5, 6)


@overload
def new_document(kind: Literal[DocumentKind.LICENSE], cabinet: Cabinet, product: Product, *,
                 valid_to: date | None = ..., revoked: bool = ...,
                 license_id: str | None = ...) -> License: ...


@overload
def new_document(kind: Literal[DocumentKind.CERTIFICATE], cabinet: Cabinet, product: Product,
                 *, valid_to: date | None = ..., revoked: bool = ...,
                 license_id: str | None = ...) -> Certificate: ...


@overload
def new_document(kind: DocumentKind, cabinet: Cabinet, product: Product, *,
                 valid_to: date | None = ..., revoked: bool = ...,
                 license_id: str | None = ...) -> License | Certificate: ...


def new_document(kind: DocumentKind, cabinet: Cabinet, product: Product, *,
                 valid_to: date | None = date(2032, 1, 1), revoked: bool = False,
                 license_id: str | None = None) -> License | Certificate:
    common: dict[str, Any] = {
        "id": IDS.new_id(), "number": f"{kind.prefix}-2031-{next(_NUMBERS) % 10**6:06d}",
        "product_id": product.id, "cabinet_id": cabinet.id, "valid_from": date(2031, 1, 1),
        "valid_to": valid_to, "revoked_at": T0 if revoked else None,
        "purchase_item": unique("ORD"), "created_at": T0, "updated_at": T0}
    if kind is DocumentKind.LICENSE:
        return License(**common, edition="Enterprise", seats=25)
    return Certificate(**common, level="premium", license_id=license_id)


async def add_documents(storage: Adapter, *documents: License | Certificate) -> None:
    async with storage.unit_of_work() as uow:
        for document in documents:
            repository: Any = uow.licenses if isinstance(document, License) else uow.certificates
            await repository.add(document)
        await uow.commit()


async def catalogue(storage: Adapter) -> Product:
    product = new_product()
    async with storage.unit_of_work() as uow:
        await uow.products.add(product)
        await uow.commit()
    return product


async def test_documents_round_trip_with_dates_and_scope(storage: Adapter) -> None:
    product = await catalogue(storage)
    root = new_cabinet()
    home, sibling = new_cabinet(root), new_cabinet(root)
    await add_all(storage, root, home, sibling)
    license_ = new_document(DocumentKind.LICENSE, home, product, valid_to=None)
    certificate = new_document(DocumentKind.CERTIFICATE, home, product,
                               license_id=license_.id)
    await add_documents(storage, license_, certificate)
    async with storage.unit_of_work() as uow:
        assert await uow.licenses.get(license_.id, EVERYTHING) == license_
        assert await uow.certificates.get(certificate.id, Scope.subtree(home.path)) == certificate
        assert await uow.licenses.get(license_.id, Scope.subtree(sibling.path)) is None
        assert await uow.certificates.get(license_.id, EVERYTHING) is None
        assert await uow.licenses.get_by_number(license_.number, EVERYTHING) == license_
        assert await uow.certificates.by_purchase_items(
            [certificate.purchase_item or "", license_.purchase_item or "", "unknown"],
            Scope.subtree(root.path)) == {certificate.purchase_item: certificate}
        assert await uow.certificates.by_purchase_items(
            [certificate.purchase_item or ""], Scope.subtree(sibling.path)) == {}
        assert await uow.licenses.by_purchase_items([], EVERYTHING) == {}
        assert await uow.licenses.numbers_taken(
            [license_.number, certificate.number, "LIC-1999-000001"]) == {license_.number}


async def test_described_documents_carry_their_product_owner_and_license_number(
        storage: Adapter) -> None:
    product, other = await catalogue(storage), await catalogue(storage)
    root = new_cabinet()
    home, sibling = new_cabinet(root), new_cabinet(root)
    await add_all(storage, root, home, sibling)
    # The license a certificate covers may sit where the reader cannot see it: its number
    # is still named; a certificate with no license has none.
    elsewhere = new_document(DocumentKind.LICENSE, sibling, other)
    covering = new_document(DocumentKind.CERTIFICATE, home, product, license_id=elsewhere.id)
    bare = new_document(DocumentKind.CERTIFICATE, home, other)
    await add_documents(storage, elsewhere, covering, bare)
    in_home = Scope.subtree(home.path)

    async with storage.unit_of_work(read_only=True) as uow:
        found = await uow.certificates.get_described(covering.id, in_home)
        assert found == Described(covering, product, home, elsewhere.number)
        assert await uow.certificates.get_described(covering.id,
                                                    Scope.subtree(sibling.path)) is None
        assert await uow.licenses.get_described(covering.id, EVERYTHING) is None
        assert await uow.licenses.get_described(elsewhere.id, EVERYTHING) == Described(
            elsewhere, other, sibling)
        listed = await walk_pages(lambda page: uow.certificates.list_described(
            in_home, DocumentFilter(today=TODAY), page), limit=1)
        only_other = await uow.certificates.list_described(
            in_home, DocumentFilter(today=TODAY, product_id=other.id), PageRequest(10))
    assert listed == sorted([Described(covering, product, home, elsewhere.number),
                             Described(bare, other, home)], key=lambda d: d.id)
    assert only_other == [Described(bare, other, home)]


async def test_documents_are_searched_counted_and_sorted_by_each_offered_column(
        storage: Adapter) -> None:
    alpha, beta = await catalogue(storage), await catalogue(storage)
    root = new_cabinet()
    home, sibling = new_cabinet(root), new_cabinet(root)
    home = replace(home, name="Zeta 100% Works")
    await add_all(storage, root, home, sibling)
    made = [new_document(DocumentKind.LICENSE, home if i % 2 else sibling,
                         alpha if i % 3 else beta, valid_to=None if i == 4 else
                         date(2032, 1, 1) + timedelta(days=(i * 7) % 11)) for i in range(9)]
    await add_documents(storage, *made)
    names = {alpha.id: alpha.name.lower(), beta.id: beta.name.lower(),
             home.id: home.name.lower(), sibling.id: sibling.name.lower()}
    expected: dict[str, Callable[[License], Any]] = {
        "number": lambda d: d.number, "product": lambda d: names[d.product_id],
        "holder": lambda d: names[d.cabinet_id],
        "valid_to": lambda d: (d.valid_to is None, d.valid_to or date.min)}
    assert set(expected) == set(DOCUMENT_SORTS)
    everything = DocumentFilter(today=TODAY)
    in_root = Scope.subtree(root.path)
    async with storage.unit_of_work(read_only=True) as uow:
        assert await uow.licenses.count_visible(in_root, everything) == 9
        assert await uow.licenses.count_visible(Scope.subtree(home.path), everything) == 4
        for key, order in expected.items():
            for descending in (False, True):
                want = [d.id for d in sorted(made, key=lambda d: (order(d), d.id),
                                             reverse=descending)]
                pages = [await uow.licenses.list_described(
                    in_root, everything, PageRequest.numbered(4, number, Sort(key, descending)))
                    for number in (1, 2, 3)]
                assert [len(p) for p in pages] == [5, 5, 1]  # each page: one more says more
                assert [d.document.id for p in pages for d in p[:4]] == want, (key, descending)
        # A part of a number, or of the holder's name (LIKE's own characters are plain).
        by_number = DocumentFilter(today=TODAY, search=f" {made[5].number[-6:]} ")
        assert [d.id for d in await uow.licenses.list_visible(
            in_root, by_number, PageRequest(10))] == [made[5].id]
        by_holder = DocumentFilter(today=TODAY, search="ZETA 100%")
        assert await uow.licenses.count_visible(in_root, by_holder) == 4
        assert await uow.licenses.count_visible(
            in_root, DocumentFilter(today=TODAY, search="Zeta 1000")) == 0
        assert await uow.licenses.count_visible(
            in_root, DocumentFilter(today=TODAY, search="zeta _00")) == 0


async def test_organisations_and_users_are_searched_counted_and_sorted(
        storage: Adapter) -> None:
    root = new_cabinet()
    under = [replace(new_cabinet(root, external_id=f"B-{i}-{unique('x')}",
                                 at=T0 + timedelta(days=(i * 5) % 7)),
                     name=f"{'Acme' if i % 2 else 'Zenith'} {unique('org')}") for i in range(6)]
    people = [replace(new_user(root, email=f"{unique('p')}@{'acme' if i % 3 else 'zen'}.test",
                               role=Role.CUSTOMER_ADMIN if i % 2 else Role.CUSTOMER_USER),
                      name=f"Person {9 - i}", last_sign_in_at=None if i == 2 else
                      T0 + timedelta(hours=(i * 5) % 7)) for i in range(6)]
    await add_all(storage, root, *under, *people)
    in_root = Scope.subtree(root.path)
    cabinet_orders: dict[str, Callable[[Cabinet], Any]] = {
        "name": lambda c: c.name.lower(), "kind": lambda c: c.kind.value,
        "created": lambda c: c.created_at}
    user_orders: dict[str, Callable[[User], Any]] = {
        "name": lambda u: u.name.lower(), "email": lambda u: u.email_key or "",
        "role": lambda u: u.role.value,
        "last_sign_in": lambda u: (u.last_sign_in_at is None, u.last_sign_in_at or T0)}
    assert set(cabinet_orders) == set(CABINET_SORTS) and set(user_orders) == set(USER_SORTS)
    async with storage.unit_of_work(read_only=True) as uow:
        assert await uow.cabinets.count_visible(in_root) == 7
        assert await uow.cabinets.count_visible(in_root, " ACME ") == 3
        assert await uow.cabinets.count_visible(in_root, under[4].external_id or "") == 1
        assert await uow.cabinets.count_visible(Scope.subtree(under[0].path)) == 1
        for key, order in cabinet_orders.items():
            for descending in (False, True):
                want = [c.id for c in sorted([root, *under], key=lambda c: (order(c), c.id),
                                             reverse=descending)]
                got = [await uow.cabinets.list_visible(
                    in_root, PageRequest.numbered(3, n, Sort(key, descending))) for n in (1, 2, 3)]
                assert [c.id for page in got for c in page[:3]] == want, (key, descending)
        assert await uow.users.count_in_cabinet(root.id, in_root) == 6
        assert await uow.users.count_in_cabinet(root.id, in_root, "@ZEN.") == 2
        assert await uow.users.count_in_cabinet(root.id, in_root, "person 7") == 1
        assert await uow.users.count_in_cabinet(root.id, Scope.subtree(under[0].path)) == 0
        for key, user_order in user_orders.items():
            for descending in (False, True):
                wanted = [u.id for u in sorted(people, key=lambda u: (user_order(u), u.id),
                                               reverse=descending)]
                pages = [await uow.users.list_in_cabinet(
                    root.id, in_root, PageRequest.numbered(4, n, Sort(key, descending)))
                    for n in (1, 2)]
                assert [u.id for page in pages for u in page[:4]] == wanted, (key, descending)
        found = await uow.users.list_in_cabinet(root.id, in_root, PageRequest(10), "Person 4")
        assert [u.id for u in found] == [people[5].id]


async def test_many_documents_are_added_at_once_or_none_is(storage: Adapter) -> None:
    product = await catalogue(storage)
    cabinet = new_cabinet()
    await add_all(storage, cabinet)
    # More than one statement's worth, so that the adapter's batches meet.
    many = [new_document(DocumentKind.LICENSE, cabinet, product) for _ in range(450)]
    async with storage.unit_of_work() as uow:
        await uow.licenses.add(*many)
        await uow.licenses.add()
        await uow.commit()
    async with storage.unit_of_work(read_only=True) as uow:
        found = await uow.licenses.by_purchase_items(
            [d.purchase_item or "" for d in many], EVERYTHING)
        taken = await uow.licenses.numbers_taken([d.number for d in many])
    assert found == {d.purchase_item: d for d in many}
    assert taken == {d.number for d in many}

    fresh = [new_document(DocumentKind.LICENSE, cabinet, product) for _ in range(3)]
    twice = replace(new_document(DocumentKind.LICENSE, cabinet, product),
                    number=fresh[0].number)
    for batch in ([*fresh, twice], [*fresh, replace(twice, number="LIC-2026-999999",
                                                     purchase_item=many[7].purchase_item)]):
        async with storage.unit_of_work() as uow:
            with pytest.raises(DuplicateKey):
                await uow.licenses.add(*batch)
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.licenses.numbers_taken([d.number for d in fresh]) == set()


async def test_numbers_and_purchase_items_are_unique(storage: Adapter) -> None:
    product = await catalogue(storage)
    cabinet = new_cabinet()
    await add_all(storage, cabinet)
    first = new_document(DocumentKind.LICENSE, cabinet, product)
    await add_documents(storage, first)
    for clash, key in [(replace(new_document(DocumentKind.LICENSE, cabinet, product),
                                number=first.number), "licenses.number"),
                       (replace(new_document(DocumentKind.LICENSE, cabinet, product),
                                purchase_item=first.purchase_item), "licenses.purchase_item")]:
        async with storage.unit_of_work() as uow:
            with pytest.raises(DuplicateKey) as taken:
                await uow.licenses.add(clash)
        assert taken.value.key == key


async def test_document_lists_filter_and_page(storage: Adapter) -> None:
    product, other = await catalogue(storage), await catalogue(storage)
    root = new_cabinet()
    child = new_cabinet(root)
    await add_all(storage, root, child)
    active = new_document(DocumentKind.LICENSE, root, product, valid_to=TODAY)
    perpetual = new_document(DocumentKind.LICENSE, child, product, valid_to=None)
    expired = new_document(DocumentKind.LICENSE, root, product, valid_to=TODAY - timedelta(1))
    revoked = new_document(DocumentKind.LICENSE, child, other, revoked=True)
    await add_documents(storage, active, perpetual, expired, revoked)
    scope = Scope.subtree(root.path)

    async def numbers(**filters: Any) -> list[str]:
        async with storage.unit_of_work() as uow:
            found = await walk_pages(lambda page: uow.licenses.list_visible(
                scope, DocumentFilter(today=TODAY, **filters), page), limit=1)
        return [d.number for d in found]

    assert await numbers() == [d.number for d in (active, perpetual, expired, revoked)]
    assert await numbers(status=DocumentStatus.ACTIVE) == [active.number, perpetual.number]
    assert await numbers(status=DocumentStatus.EXPIRED) == [expired.number]
    assert await numbers(status=DocumentStatus.REVOKED) == [revoked.number]
    assert await numbers(product_id=other.id) == [revoked.number]
    assert await numbers(expires_before=TODAY + timedelta(1)) == [active.number, expired.number]


async def test_update_moves_and_revokes_and_transfers_are_kept_in_order(
        storage: Adapter) -> None:
    product = await catalogue(storage)
    root = new_cabinet()
    child = new_cabinet(root)
    await add_all(storage, root, child)
    certificate = new_document(DocumentKind.CERTIFICATE, root, product)
    await add_documents(storage, certificate)
    moved = replace(certificate, cabinet_id=child.id, valid_to=date(2040, 1, 1),
                    revoked_at=T0 + SECOND, updated_at=T0 + SECOND, level="standard",
                    number="CRT-0000-000000")
    first = Transfer(IDS.new_id(), DocumentKind.CERTIFICATE, certificate.id, root.id,
                     child.id, T0, IDS.new_id(), "a@example.test")
    back = Transfer(IDS.new_id(), DocumentKind.CERTIFICATE, certificate.id, child.id,
                    root.id, T0 + SECOND, None, None)
    async with storage.unit_of_work() as uow:
        await uow.certificates.update(moved)
        await uow.transfers.add(first)
        await uow.transfers.add(back)
        await uow.commit()
    async with storage.unit_of_work() as uow:
        # Every field but the number (which never changes) is written.
        assert await uow.certificates.get(certificate.id, EVERYTHING) == replace(
            moved, number=certificate.number)
        assert await uow.transfers.of_document(certificate.id) == [first, back]
        assert await uow.transfers.of_document(IDS.new_id()) == []


# --- purchase events --------------------------------------------------------------------------

async def test_an_event_is_claimed_once_and_keeps_its_outcome(storage: Adapter) -> None:
    event_id = unique("evt")
    async with storage.unit_of_work() as uow:
        assert await uow.purchases.claim(event_id, "purchase.completed", T0, T0) is True
        await uow.purchases.record_outcome(event_id, {"licenses": [{"number": "LIC-1"}]})
        await uow.commit()
    async with storage.unit_of_work() as uow:
        assert await uow.purchases.claim(event_id, "purchase.completed", T0, T0) is False
        assert await uow.purchases.outcome(event_id) == {"licenses": [{"number": "LIC-1"}]}
        assert await uow.purchases.outcome(unique("evt")) is None


async def test_a_rolled_back_claim_frees_the_event(storage: Adapter) -> None:
    event_id = unique("evt")
    async with storage.unit_of_work() as uow:
        assert await uow.purchases.claim(event_id, "purchase.completed", T0, T0) is True
    async with storage.unit_of_work() as uow:
        assert await uow.purchases.claim(event_id, "purchase.completed", T0, T0) is True


async def test_concurrent_claims_of_one_event_have_one_winner(storage: Adapter) -> None:
    event_id = unique("evt")

    async def claim() -> bool:
        async with storage.unit_of_work() as uow:
            won = await uow.purchases.claim(event_id, "purchase.completed", T0, T0)
            if won:
                await asyncio.sleep(0.05)  # hold the claim while the others arrive
                await uow.purchases.record_outcome(event_id, {"by": "winner"})
                await uow.commit()
            else:
                assert await uow.purchases.outcome(event_id) == {"by": "winner"}
            return won

    assert sorted(await asyncio.gather(*(claim() for _ in range(5)))) == [False] * 4 + [True]


# --- users -----------------------------------------------------------------------------------

async def test_user_round_trips_every_field(storage: Adapter) -> None:
    vendor = new_cabinet(kind=CabinetKind.VENDOR)
    customer = new_cabinet()
    inactive = new_user(customer, role=Role.CUSTOMER_ADMIN, active=False, password_hash=None)
    staff = new_user(vendor, role=Role.STAFF_ADMIN, at=T0 + timedelta(microseconds=999_999))
    await add_all(storage, vendor, customer, inactive, staff)

    got_inactive = await stored_user(storage, inactive.id)
    got_staff = await stored_user(storage, staff.id)

    assert got_inactive == inactive
    assert got_staff == staff
    assert got_inactive is not None and got_staff is not None
    assert got_inactive.active is False and got_staff.active is True
    assert got_inactive.password_hash is None
    assert got_inactive.role is Role.CUSTOMER_ADMIN and got_staff.role is Role.STAFF_ADMIN
    assert got_staff.created_at.utcoffset() is not None
    assert got_inactive.deleted_at is None


async def test_duplicate_email_key_is_a_duplicate_key(storage: Adapter) -> None:
    cabinet, other_cabinet = new_cabinet(), new_cabinet()
    first = new_user(cabinet)
    await add_all(storage, cabinet, other_cabinet, first)
    same_address = new_user(other_cabinet, email=first.email.upper())

    with pytest.raises(DuplicateKey) as raised:
        async with storage.unit_of_work() as uow:
            await uow.users.add(same_address)

    assert raised.value.key == "users.email_key"
    assert await stored_user(storage, same_address.id) is None


async def test_user_outside_the_scope_is_absent(storage: Adapter) -> None:
    root = new_cabinet()
    home, sibling = new_cabinet(root), new_cabinet(root)
    user = new_user(home)
    await add_all(storage, root, home, sibling, user)

    assert await stored_user(storage, user.id, Scope.subtree(sibling.path)) is None
    assert await stored_user(storage, user.id, Scope.subtree(home.path)) == user
    assert await stored_user(storage, user.id, Scope.subtree(root.path)) == user
    assert await stored_user(storage, IDS.new_id()) is None


async def test_get_by_email_key_ignores_cabinets(storage: Adapter) -> None:
    cabinet = new_cabinet()
    user = new_user(cabinet)
    await add_all(storage, cabinet, user)
    assert user.email_key is not None

    async with storage.unit_of_work() as uow:
        assert await uow.users.get_by_email_key(user.email_key) == user
        assert await uow.users.get_by_email_key(f"{unique('nobody')}@example.test") is None


async def test_list_in_cabinet_pages_through_its_users_only(storage: Adapter) -> None:
    cabinet, sibling = new_cabinet(), new_cabinet()
    child = new_cabinet(cabinet)
    members = [new_user(cabinet) for _ in range(5)]
    await add_all(storage, cabinet, sibling, child, *members, new_user(child), new_user(sibling))

    async with storage.unit_of_work() as uow:
        first_page = await uow.users.list_in_cabinet(cabinet.id, EVERYTHING, PageRequest(limit=2))
        walked = await walk_pages(
            lambda page: uow.users.list_in_cabinet(cabinet.id, Scope.subtree(cabinet.path), page),
            limit=2)
        all_at_once = await uow.users.list_in_cabinet(cabinet.id, EVERYTHING, PageRequest())
        out_of_scope = await uow.users.list_in_cabinet(
            cabinet.id, Scope.subtree(sibling.path), PageRequest())
        from_child_scope = await uow.users.list_in_cabinet(
            cabinet.id, Scope.subtree(child.path), PageRequest())

    assert ids(first_page) == ids(members)[:3]
    assert ids(walked) == ids(members)
    assert all_at_once == members
    assert out_of_scope == []
    assert from_child_scope == []


async def test_update_writes_the_mutable_fields(storage: Adapter) -> None:
    cabinet = new_cabinet()
    user, bystander = new_user(cabinet, password_hash=None), new_user(cabinet)
    await add_all(storage, cabinet, user, bystander)

    user.name = unique("renamed")
    user.role = Role.CUSTOMER_ADMIN
    user.active = False
    user.password_hash = "$argon2id$v=19$new"
    user.updated_at = T0 + timedelta(hours=1)
    async with storage.unit_of_work() as uow:
        await uow.users.update(user)
        await uow.commit()
    assert await stored_user(storage, user.id) == user

    user.active = True
    user.password_hash = None
    async with storage.unit_of_work() as uow:
        await uow.users.update(user)
        await uow.commit()
    assert await stored_user(storage, user.id) == user
    assert await stored_user(storage, bystander.id) == bystander


async def test_a_deleted_user_is_gone_and_frees_the_address(storage: Adapter) -> None:
    cabinet = new_cabinet()
    deleted, kept = new_user(cabinet), new_user(cabinet)
    await add_all(storage, cabinet, deleted, kept)
    old_key = deleted.email_key
    assert old_key is not None

    deleted.email_key, deleted.active = None, False
    deleted.deleted_at = deleted.updated_at = T0 + timedelta(hours=2)
    async with storage.unit_of_work() as uow:
        await uow.users.update(deleted)
        await uow.commit()

    assert await stored_user(storage, deleted.id) is None
    async with storage.unit_of_work() as uow:
        assert await uow.users.list_in_cabinet(cabinet.id, EVERYTHING, PageRequest()) == [kept]
        assert await uow.users.get_by_email_key(old_key) is None

    invited_again = new_user(cabinet, email=deleted.email)
    await add_all(storage, invited_again)
    async with storage.unit_of_work() as uow:
        assert await uow.users.get_by_email_key(old_key) == invited_again
        assert ids(await uow.users.list_in_cabinet(cabinet.id, EVERYTHING, PageRequest())) == [
            kept.id, invited_again.id]


# --- login sessions and one-time tokens ------------------------------------------------------

async def test_session_add_get_and_revoke(storage: Adapter) -> None:
    user, session = await user_with_session(storage)
    other = new_session(user)
    await add_all(storage, other)

    async with storage.unit_of_work() as uow:
        assert await uow.sessions.get(session.id) == session
        assert await uow.sessions.get(IDS.new_id()) is None
        await uow.sessions.revoke(session.id, T0 + SECOND)
        await uow.commit()

    async with storage.unit_of_work() as uow:
        revoked = await uow.sessions.get(session.id)
        assert await uow.sessions.get(other.id) == other
    assert revoked is not None and revoked.revoked_at == T0 + SECOND
    assert not revoked.is_live(T0 + 2 * SECOND)


async def test_signed_in_reads_the_session_its_user_and_their_cabinet(
        storage: Adapter) -> None:
    user, session = await user_with_session(storage)
    other_user, other_session = await user_with_session(storage)

    async with storage.unit_of_work(read_only=True) as uow:
        found = await uow.sessions.signed_in(session.id, user.id)
        assert found is not None
        got_session, got_user, got_cabinet = found
        assert got_session == session and got_user == user
        assert got_cabinet == await uow.cabinets.get(user.cabinet_id, EVERYTHING)
        # A session is only ever its own user's.
        assert await uow.sessions.signed_in(session.id, other_user.id) is None
        assert await uow.sessions.signed_in(other_session.id, user.id) is None
        assert await uow.sessions.signed_in(IDS.new_id(), user.id) is None

    async with storage.unit_of_work() as uow:
        await uow.sessions.revoke(session.id, T0 + SECOND)
        user.deleted_at = T0 + SECOND
        await uow.users.update(user)
        await uow.commit()
    async with storage.unit_of_work(read_only=True) as uow:
        assert await uow.sessions.signed_in(session.id, user.id) is None
        found = await uow.sessions.signed_in(other_session.id, other_user.id)
    assert found is not None and found[0].revoked_at is None


async def test_revoke_all_of_user_spares_other_users(storage: Adapter) -> None:
    user, first = await user_with_session(storage)
    second = new_session(user)
    _, theirs = await user_with_session(storage)
    await add_all(storage, second)

    async with storage.unit_of_work() as uow:
        await uow.sessions.revoke_all_of_user(user.id, T0 + SECOND)
        await uow.commit()

    async with storage.unit_of_work() as uow:
        got = [await uow.sessions.get(s.id) for s in (first, second, theirs)]
    assert [s.revoked_at if s else "missing" for s in got] == [T0 + SECOND, T0 + SECOND, None]


async def test_a_refresh_token_is_used_once(storage: Adapter) -> None:
    _, session = await user_with_session(storage)
    _, other_session = await user_with_session(storage)
    jti = IDS.new_id()
    async with storage.unit_of_work() as uow:
        await uow.sessions.add_refresh_token(jti, session.id, T0 + timedelta(hours=1))
        await uow.commit()

    async with storage.unit_of_work() as uow:
        assert await uow.sessions.use_refresh_token(IDS.new_id(), session.id, T0) is False
        assert await uow.sessions.use_refresh_token(jti, other_session.id, T0) is False
        assert await uow.sessions.use_refresh_token(jti, session.id, T0) is True
        assert await uow.sessions.use_refresh_token(jti, session.id, T0) is False
        await uow.commit()

    async with storage.unit_of_work() as uow:
        assert await uow.sessions.use_refresh_token(jti, session.id, T0 + SECOND) is False
        # When it was spent: the first use, in the right session only.
        assert await uow.sessions.refresh_token_used_at(jti, session.id) == T0
        assert await uow.sessions.refresh_token_used_at(jti, other_session.id) is None
        assert await uow.sessions.refresh_token_used_at(IDS.new_id(), session.id) is None


async def test_an_unspent_refresh_token_has_no_use_time(storage: Adapter) -> None:
    _, session = await user_with_session(storage)
    jti = IDS.new_id()
    async with storage.unit_of_work() as uow:
        await uow.sessions.add_refresh_token(jti, session.id, T0 + timedelta(hours=1))
        assert await uow.sessions.refresh_token_used_at(jti, session.id) is None


async def test_an_uncommitted_refresh_token_use_is_undone(storage: Adapter) -> None:
    _, session = await user_with_session(storage)
    jti = IDS.new_id()
    async with storage.unit_of_work() as uow:
        await uow.sessions.add_refresh_token(jti, session.id, T0 + timedelta(hours=1))
        await uow.commit()

    async with storage.unit_of_work() as uow:
        assert await uow.sessions.use_refresh_token(jti, session.id, T0) is True
    async with storage.unit_of_work() as uow:
        assert await uow.sessions.use_refresh_token(jti, session.id, T0) is True


async def test_concurrent_refresh_token_use_has_one_winner(storage: Adapter) -> None:
    _, session = await user_with_session(storage)
    tokens = [IDS.new_id() for _ in range(5)]
    async with storage.unit_of_work() as uow:
        for jti in tokens:
            await uow.sessions.add_refresh_token(jti, session.id, T0 + timedelta(hours=1))
        await uow.commit()

    async def use(jti: str) -> bool:
        async with storage.unit_of_work() as uow:
            used = await uow.sessions.use_refresh_token(jti, session.id, T0)
            await asyncio.sleep(0.01)  # hold the row while the other caller arrives
            await uow.commit()
            return used

    for jti in tokens:
        results = await asyncio.gather(use(jti), use(jti), use(jti))
        assert sorted(results) == [False, False, True]


async def test_a_password_token_is_used_once(storage: Adapter) -> None:
    user, _ = await user_with_session(storage)
    token_hash = unique("hash")
    async with storage.unit_of_work() as uow:
        await uow.sessions.add_password_token(token_hash, user.id, T0 + timedelta(hours=1), T0)
        await uow.commit()

    async with storage.unit_of_work() as uow:
        assert await uow.sessions.use_password_token(unique("hash"), T0) is None
        assert await uow.sessions.use_password_token(token_hash, T0) == user.id
        assert await uow.sessions.use_password_token(token_hash, T0) is None
        await uow.commit()
    async with storage.unit_of_work() as uow:
        assert await uow.sessions.use_password_token(token_hash, T0 + SECOND) is None


async def test_looking_up_a_password_token_does_not_spend_it(storage: Adapter) -> None:
    user, _ = await user_with_session(storage)
    token_hash, expired_hash = unique("hash"), unique("hash")
    async with storage.unit_of_work() as uow:
        await uow.sessions.add_password_token(token_hash, user.id, T0 + timedelta(hours=1), T0)
        await uow.sessions.add_password_token(expired_hash, user.id, T0, T0)
        await uow.commit()

    async with storage.unit_of_work() as uow:
        assert await uow.sessions.password_token_user(token_hash, T0) == user.id
        assert await uow.sessions.password_token_user(token_hash, T0) == user.id
        assert await uow.sessions.password_token_user(expired_hash, T0 + SECOND) is None
        assert await uow.sessions.password_token_user(unique("hash"), T0) is None
        assert await uow.sessions.use_password_token(token_hash, T0) == user.id
        assert await uow.sessions.password_token_user(token_hash, T0) is None


async def test_an_expired_password_token_is_refused(storage: Adapter) -> None:
    user, _ = await user_with_session(storage)
    token_hash = unique("hash")
    async with storage.unit_of_work() as uow:
        await uow.sessions.add_password_token(token_hash, user.id, T0, T0)
        await uow.commit()

    async with storage.unit_of_work() as uow:
        assert await uow.sessions.use_password_token(token_hash, T0 + SECOND) is None
        assert await uow.sessions.use_password_token(token_hash, T0 + timedelta(days=9)) is None


async def test_password_links_are_counted_by_when_they_were_made_and_dropped_unused(
        storage: Adapter) -> None:
    user, _ = await user_with_session(storage)
    other, _ = await user_with_session(storage)
    used, unused, old = unique("hash"), unique("hash"), unique("hash")
    week = timedelta(days=7)
    async with storage.unit_of_work() as uow:
        await uow.sessions.add_password_token(old, user.id, T0 + week, T0 - timedelta(hours=2))
        await uow.sessions.add_password_token(used, user.id, T0 + week, T0)
        await uow.sessions.add_password_token(unused, user.id, T0 + week, T0 + SECOND)
        await uow.sessions.add_password_token(unique("hash"), other.id, T0 + week, T0)
        await uow.commit()
    async with storage.unit_of_work() as uow:
        assert await uow.sessions.password_links_since(user.id, T0 - timedelta(hours=1)) == 2
        assert await uow.sessions.password_links_since(user.id, T0 - timedelta(hours=3)) == 3
        assert await uow.sessions.use_password_token(used, T0) == user.id
        await uow.sessions.drop_password_tokens(user.id)
        await uow.commit()
    async with storage.unit_of_work() as uow:
        assert await uow.sessions.password_token_user(unused, T0) is None
        assert await uow.sessions.password_token_user(old, T0) is None
        # The used link stays (it still counts), and another user's links are untouched.
        assert await uow.sessions.password_links_since(user.id, T0 - timedelta(hours=1)) == 1
        assert await uow.sessions.password_links_since(other.id, T0 - timedelta(hours=1)) == 1


# --- audit log -------------------------------------------------------------------------------

async def test_audit_entries_are_filtered_counted_and_sorted_by_time(storage: Adapter) -> None:
    cabinet = new_cabinet()
    made = [replace(new_entry(cabinet, details={"product": "dbguard" if i % 2 else "vault"}),
                    action=("download", "user.created", "user.updated", "users.odd",
                            "login", "download")[i],
                    actor_email=("Ann@Example.test" if i < 3 else "bob@example.test"),
                    at=T0 + timedelta(hours=(i * 5) % 6)) for i in range(6)]
    await add_all(storage, cabinet, *made)
    scope = Scope.subtree(cabinet.path)

    async def found(**filters: Any) -> set[int]:
        async with storage.unit_of_work(read_only=True) as uow:
            rows = await uow.audit.list_visible(scope, PageRequest(50), AuditFilter(**filters))
            assert await uow.audit.count_visible(scope, AuditFilter(**filters)) == len(rows)
        return {made.index(row) for row in rows}
    assert await found() == set(range(6))
    # An action, or its family ("user" is user.*, not users.*).
    assert await found(action="download") == {0, 5}
    assert await found(action="user") == {1, 2}
    assert await found(actor="ANN@") == {0, 1, 2}
    assert await found(since=T0 + timedelta(hours=2), before=T0 + timedelta(hours=4)) == {3, 4}
    assert await found(product="dbguard") == {1, 3, 5}
    assert await found(action="download", product="vault") == {0}
    async with storage.unit_of_work(read_only=True) as uow:
        for descending in (False, True):
            pages = [await uow.audit.list_visible(
                scope, PageRequest.numbered(4, n, Sort("at", descending))) for n in (1, 2)]
            assert [e.id for p in pages for e in p[:4]] == [e.id for e in sorted(
                made, key=lambda e: (e.at, e.id), reverse=descending)]


async def test_audit_details_round_trip(storage: Adapter) -> None:
    cabinet = new_cabinet()
    details = {"changes": {"name": ["Old", "Nëw “quoted”"], "external_id": [None, "B-1"]},
               "count": 3, "ratio": 0.5, "flags": [True, False, None], "nested": {"a": {"b": []}},
               "empty": {}}
    entry = new_entry(cabinet, details=details)
    bare = new_entry(cabinet)
    await add_all(storage, cabinet, entry, bare)

    async with storage.unit_of_work() as uow:
        listed = await uow.audit.list_visible(Scope.subtree(cabinet.path), PageRequest())

    assert listed == [entry, bare]
    assert listed[0].details == details
    assert listed[1].details == {}
    assert listed[0].at == T0 and listed[0].at.utcoffset() is not None


async def test_audit_list_is_scoped(storage: Adapter) -> None:
    root = new_cabinet()
    child, sibling = new_cabinet(root), new_cabinet()
    about = IDS.new_id()  # one object the entries share, to filter the shared log by
    entries = [new_entry(root, object_id=about), new_entry(sibling, object_id=about),
               new_entry(None, object_id=about), new_entry(child, object_id=about),
               new_entry(child)]
    on_root, on_sibling, on_nothing, on_child, on_child_other = entries
    await add_all(storage, root, child, sibling, *entries)

    async with storage.unit_of_work() as uow:
        in_root = await uow.audit.list_visible(Scope.subtree(root.path), PageRequest())
        in_child = await uow.audit.list_visible(Scope.subtree(child.path), PageRequest())
        about_in_root = await uow.audit.list_visible(Scope.subtree(root.path), PageRequest(),
                                                     AuditFilter(object_id=about))
        about_anywhere = await uow.audit.list_visible(EVERYTHING, PageRequest(),
                                                      AuditFilter(object_id=about))
        walked = await walk_pages(lambda page: uow.audit.list_visible(
            EVERYTHING, page, AuditFilter(object_id=about)), limit=1)

    assert in_root == [on_root, on_child, on_child_other]
    assert in_child == [on_child, on_child_other]
    assert about_in_root == [on_root, on_child]
    assert about_anywhere == [on_root, on_sibling, on_nothing, on_child]
    assert walked == about_anywhere


# --- sign-in throttling ---------------------------------------------------------------------

# Long ago, so that prune() in these tests never touches windows other tests record.
LONG_AGO = datetime(2001, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)
WINDOW = timedelta(minutes=15)


async def hit(storage: Adapter, key: str, now: datetime) -> tuple[int, datetime]:
    async with storage.unit_of_work() as uow:
        counted = await uow.login_throttle.hit(key, now, now - WINDOW)
        await uow.commit()
    return counted


async def test_attempts_count_within_a_window_and_restart_after_it(storage: Adapter) -> None:
    key = unique("account")
    t0 = LONG_AGO
    assert await hit(storage, key, t0) == (1, t0)
    assert await hit(storage, key, t0 + SECOND) == (2, t0)
    assert await hit(storage, key, t0 + WINDOW - SECOND) == (3, t0)
    # The window that began at t0 has ended: a fresh one begins with this attempt.
    assert await hit(storage, key, t0 + WINDOW) == (1, t0 + WINDOW)
    assert await hit(storage, unique("other"), t0) == (1, t0)


async def test_forgive_takes_one_attempt_back_and_reset_all(storage: Adapter) -> None:
    account, address = unique("account"), unique("address")
    for _ in range(3):
        await hit(storage, account, LONG_AGO)
        await hit(storage, address, LONG_AGO)
    async with storage.unit_of_work() as uow:
        await uow.login_throttle.forgive(address)
        await uow.login_throttle.reset(account)
        await uow.commit()
    assert await hit(storage, address, LONG_AGO + SECOND) == (3, LONG_AGO)
    assert await hit(storage, account, LONG_AGO + SECOND) == (1, LONG_AGO + SECOND)
    fresh = unique("never-hit")
    async with storage.unit_of_work() as uow:
        await uow.login_throttle.forgive(fresh)  # nothing to forgive: no error, no row
        await uow.commit()
    assert await hit(storage, fresh, LONG_AGO) == (1, LONG_AGO)


async def test_an_uncommitted_attempt_does_not_count(storage: Adapter) -> None:
    key = unique("account")
    async with storage.unit_of_work() as uow:
        await uow.login_throttle.hit(key, LONG_AGO, LONG_AGO - WINDOW)
    assert await hit(storage, key, LONG_AGO) == (1, LONG_AGO)


async def test_concurrent_attempts_each_get_their_own_count(storage: Adapter) -> None:
    key = unique("burst")
    counts = await asyncio.gather(*(hit(storage, key, LONG_AGO) for _ in range(20)))
    assert sorted(count for count, _ in counts) == list(range(1, 21))


async def test_prune_drops_windows_that_began_before_a_time(storage: Adapter) -> None:
    old, new = unique("old"), unique("new")
    await hit(storage, old, LONG_AGO)
    await hit(storage, old, LONG_AGO + SECOND)
    await hit(storage, new, LONG_AGO + timedelta(hours=1))
    async with storage.unit_of_work() as uow:
        await uow.login_throttle.prune(LONG_AGO + timedelta(minutes=30))
        await uow.commit()
    # The pruned key starts over even inside what was its window; the other one counts on.
    assert await hit(storage, old, LONG_AGO + SECOND * 2) == (1, LONG_AGO + SECOND * 2)
    assert await hit(storage, new, LONG_AGO + timedelta(hours=1)) == (
        2, LONG_AGO + timedelta(hours=1))


# --- row locks -------------------------------------------------------------------------------

async def test_a_row_read_for_update_waits_for_the_other_writer(storage: Adapter) -> None:
    """Two changes of one user never interleave: the second read waits for the first commit
    and sees its result (on SQLite the whole unit of work waits)."""
    cabinet = new_cabinet()
    user = new_user(cabinet)
    await add_all(storage, cabinet, user)
    first_holds = asyncio.Event()
    release = asyncio.Event()

    async def first() -> None:
        async with storage.unit_of_work() as uow:
            locked = await uow.users.get(user.id, EVERYTHING, for_update=True)
            assert locked is not None
            locked.name = "First"
            await uow.users.update(locked)
            first_holds.set()
            await release.wait()
            await uow.commit()

    async def second() -> str:
        await first_holds.wait()
        async with storage.unit_of_work() as uow:
            locked = await uow.users.get(user.id, EVERYTHING, for_update=True)
            assert locked is not None
            return locked.name

    holder = asyncio.create_task(first())
    waiter = asyncio.create_task(second())
    await first_holds.wait()
    await asyncio.sleep(0.2)
    assert not waiter.done()
    release.set()
    await holder
    assert await waiter == "First"
    async with storage.unit_of_work() as uow:
        assert await uow.cabinets.get(cabinet.id, EVERYTHING, for_update=True) == cabinet


# --- availability ----------------------------------------------------------------------------

async def test_ping_answers_when_open(storage: Adapter) -> None:
    await storage.ping()


async def test_a_closed_storage_is_unavailable(storage: Adapter) -> None:
    await storage.close()

    with pytest.raises(StorageUnavailable):
        async with storage.unit_of_work():
            pass
    with pytest.raises(StorageUnavailable):
        await storage.ping()


async def test_work_that_meets_the_storage_closing_finds_it_unavailable(
        storage: Adapter) -> None:
    # A process that stops while requests still run: each either reads or is told the
    # storage is unavailable (a 503), never another error.
    async def read() -> str:
        try:
            async with storage.unit_of_work(read_only=True) as uow:
                await uow.cabinets.get("absent", EVERYTHING)
            return "read"
        except StorageUnavailable:
            return "unavailable"

    reads = [asyncio.ensure_future(read()) for _ in range(20)]
    await asyncio.sleep(0)
    closing = asyncio.ensure_future(storage.close())
    reads += [asyncio.ensure_future(read()) for _ in range(20)]
    outcomes = await asyncio.gather(*reads)
    await closing
    assert set(outcomes) <= {"read", "unavailable"}
    assert "unavailable" in outcomes


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_never_opened_storage_is_unavailable(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    storage = adapter_for(backend, tmp_path, request)

    with pytest.raises(StorageUnavailable):
        async with storage.unit_of_work():
            pass
    with pytest.raises(StorageUnavailable):
        await storage.ping()


@pytest.mark.postgres
async def test_an_unreachable_postgres_is_unavailable() -> None:
    storage = PostgresStorage("postgresql://postgres@127.0.0.1:1/postgres", timeout_seconds=2)

    async with asyncio.timeout(10):
        with pytest.raises(StorageUnavailable):
            await storage.open()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_no_connection_in_time_is_unavailable(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """While a unit of work holds the only connection, another one gives up in time."""
    storage = adapter_for(backend, tmp_path, request, impatient=True)
    await storage.open()
    try:
        await storage.migrate()
        release = asyncio.Event()

        async def hold_the_connection() -> None:
            async with storage.unit_of_work():
                await release.wait()

        holder = asyncio.create_task(hold_the_connection())
        await asyncio.sleep(0.05)
        try:
            async with asyncio.timeout(3):
                with pytest.raises(StorageUnavailable):
                    async with storage.unit_of_work():
                        pass
        finally:
            release.set()
            await holder
        await storage.ping()  # and the connection that timed out was not lost
    finally:
        await storage.close()


@pytest.mark.postgres
async def test_dropped_postgres_connections_are_unavailable_then_replaced(
        pg_dsn: str) -> None:
    """A server restart ends every pooled connection: callers get StorageUnavailable (never a
    driver error) and the pool recovers."""
    with temporary_database("portal_restart", pg_dsn) as dsn:
        storage = PostgresStorage(dsn, pool_min=2)
        await storage.open()
        try:
            for _ in range(5):
                await asyncio.gather(storage.ping(), storage.ping())  # two pooled connections
                with closing(psycopg2.connect(dsn)) as admin, admin.cursor() as cursor:
                    cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                   " WHERE datname = current_database()"
                                   " AND pid <> pg_backend_pid()")
                    admin.commit()
                failures = 0
                while True:
                    try:
                        await storage.ping()
                        break
                    except StorageUnavailable:
                        failures += 1
                        assert failures <= 2
        finally:
            await storage.close()


@pytest.mark.parametrize("where", ["a directory", "below a file"])
async def test_an_unopenable_sqlite_file_is_unavailable(where: str, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    path = tmp_path if where == "a directory" else tmp_path / "a-file" / "db.sqlite3"

    threads_before = set(threading.enumerate())

    with pytest.raises(StorageUnavailable):
        await SqliteStorage(path).open()

    # After a failed connect aiosqlite stops its worker thread by posting to this event loop:
    # wait for it, or it reports to a closed loop during a later test.
    for thread in set(threading.enumerate()) - threads_before:
        thread.join(timeout=2)


async def test_a_unit_of_work_cancelled_while_it_begins_leaves_no_transaction_behind(
        storage: Adapter) -> None:
    """A request cancelled at any moment (a client that went away) must not leave the
    connection inside a transaction for the next one."""
    for delay in (0, 0, 0.0001, 0.0005, 0.001, 0.002):
        async def use() -> None:
            async with storage.unit_of_work() as uow:
                await uow.cabinets.get("nobody", EVERYTHING)
                await asyncio.sleep(1)

        task = asyncio.ensure_future(use())
        await asyncio.sleep(delay)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with asyncio.timeout(10), storage.unit_of_work() as uow:
            cabinet = new_cabinet()
            await uow.cabinets.add(cabinet)
            await uow.commit()
        async with storage.unit_of_work() as uow:
            assert await uow.cabinets.get(cabinet.id, EVERYTHING) is not None


async def test_a_cabinets_billing_contact_round_trips(storage: Adapter) -> None:
    cabinet = replace(new_cabinet(), contact_email="Billing@Example.test")
    await add_all(storage, cabinet)
    assert await stored_cabinet(storage, cabinet.id) == cabinet
    changed = replace(cabinet, contact_email=None, updated_at=T0 + SECOND)
    async with storage.unit_of_work() as uow:
        await uow.cabinets.update(changed)
        await uow.commit()
    assert await stored_cabinet(storage, cabinet.id) == changed


async def test_a_sign_in_is_noted_on_the_user_and_nothing_else_changes(
        storage: Adapter) -> None:
    cabinet = new_cabinet()
    await add_all(storage, cabinet)
    user = new_user(cabinet)
    async with storage.unit_of_work() as uow:
        await uow.users.add(user)
        await uow.commit()
    async with storage.unit_of_work() as uow:
        stale = await uow.users.get(user.id, EVERYTHING)
        assert stale is not None and stale.last_sign_in_at is None
        await uow.users.mark_signed_in(user.id, T0)
        await uow.commit()
    async with storage.unit_of_work() as uow:
        found = await uow.users.get(user.id, EVERYTHING)
    assert found is not None and found.last_sign_in_at == T0
    assert replace(found, last_sign_in_at=None) == user
