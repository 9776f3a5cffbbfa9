"""A message to more users than one transaction writes at once: stored as one batch when it
is made (the live streams have it at once), its notifications and e-mail written from it
just after, exactly once, by the first who comes: the background writer, a reader of
notifications, or a process started after one that stopped. On every storage adapter."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing

import psycopg2
import pytest

from adapters.sql.migrations import load_migrations
from app.config import PROJECT_ROOT
from app.domain.errors import NotFound
from app.domain.events import MailQueued, NotificationsCreated
from app.domain.notifications import Message, NotificationKind, Preference, notification_id
from app.domain.paging import PageRequest
from app.domain.users import SYSTEM, Principal, User
from app.services import notifications as notifications_module
from app.services.mail import EmailComposer, MailPolicy
from app.services.notifications import Audience, NotificationService
from app.services.notifier import INLINE_RECIPIENTS, Notifier
from app.services.work import Transactions
from tests.contract.test_notifications_storage import add, members, newest
from tests.contract.test_storage import (
    IDS,
    T0,
    Adapter,
    BlankDatabase,
    blank,
    new_cabinet,
    new_user,
    storage,
)
from tests.fakes import RecordingEventBus

__all__ = ["blank", "storage"]  # the fixtures, shared with test_storage

MANY = INLINE_RECIPIENTS + 30


class Clock:
    def now(self) -> object:
        return T0


def composer() -> EmailComposer:
    return EmailComposer(MailPolicy(sender="portal@portal.test", base_url="https://portal.test",
                                    brand="Acme", templates=PROJECT_ROOT / "templates"))


def service(storage: Adapter) -> tuple[NotificationService, RecordingEventBus]:
    """The notification service as one portal process runs it."""
    bus = RecordingEventBus()
    clock = Clock()
    notifier = Notifier(clock, IDS, composer())  # type: ignore[arg-type]
    return NotificationService(Transactions(storage, bus, notifier.prepare),
                               clock, IDS, notifier), bus  # type: ignore[arg-type]


async def mail_to(storage: Adapter, users: list[User], batch_id: str) -> list[str]:
    """The recipients of the batch's e-mail queued in the outbox, among `users`."""
    found = []
    async with storage.unit_of_work() as uow:
        for user in users:
            message = await uow.outbox.get(f"<{notification_id(batch_id, user.id)}@portal.test>")
            if message is not None:
                found.append(message.recipient)
    return found


async def test_an_announcement_to_many_is_held_then_written_once_with_its_mail(
        storage: Adapter) -> None:
    notifications, bus = service(storage)
    users = await members(storage, MANY)
    cabinet_id = users[0].cabinet_id
    async with storage.unit_of_work() as uow:
        await uow.notifications.set_preferences(
            users[0].id, {NotificationKind.ANNOUNCEMENT: Preference(False, True)})
        await uow.notifications.set_preferences(
            users[1].id, {NotificationKind.ANNOUNCEMENT: Preference(True, False)})
        await uow.commit()
    before = await newest(storage)

    told = await notifications.announce(SYSTEM, "Maintenance", "Sunday night.", None,
                                        Audience(cabinet_id=cabinet_id))

    assert told == MANY - 1  # not the one who turned announcements off in the portal
    [event] = [e for e in bus.published if isinstance(e, NotificationsCreated)]
    batch = event.batch
    assert event.held is True
    assert batch.position == before + 1 == await newest(storage)
    assert sorted(batch.users) == sorted(u.id for u in users[1:])
    assert not [e for e in bus.published if isinstance(e, MailQueued)]
    # Held: one row, not MANY, and no e-mail yet.
    async with storage.unit_of_work() as uow:
        [held] = await uow.notifications.held(10)
        assert (held.position, held.id, held.message) == (batch.position, batch.id,
                                                          batch.message)
        assert sorted(held.audience) == sorted(u.id for u in users)
        assert await uow.notifications.after(users[5].id, 0, 10) == []
    assert await mail_to(storage, users, batch.id) == []

    # Readers see it while it is held, by the id its stream was told, and write nothing.
    reader = users[5]
    as_reader = Principal(reader.id, reader.email, reader.role, cabinet_id, "/")
    page, unread = await notifications.list_own(as_reader, PageRequest())
    assert [(n.id, n.seq, n.title) for n in page.items] == [
        (batch.notification_id(reader.id), batch.position, "Maintenance")]
    assert unread == 1 == await notifications.unread_count(as_reader)
    assert [n.id for n in await notifications.after(as_reader, before, 10)] == [
        batch.notification_id(reader.id)]
    assert await notifications.after(as_reader, batch.position, 10) == []
    found, read_up_to = await notifications.since(before, [reader.id, users[0].id], 10)
    assert [(n.user_id, n.seq) for n in found] == [(reader.id, batch.position)]
    assert read_up_to == batch.position
    async with storage.unit_of_work() as uow:
        assert len(await uow.notifications.held(10)) == 1
    # The batch writer writes it, once.
    assert await notifications.spread_held() == 1
    # Written once, with the e-mail of everyone but the one who turned e-mail off.
    async with storage.unit_of_work() as uow:
        assert await uow.notifications.held(10) == []
        assert await uow.notifications.after(users[0].id, 0, 10) == []
        stored = await uow.notifications.since(batch.position, batch.position,
                                               [u.id for u in users], 10 * MANY)
    assert sorted(n.user_id for n in stored if n.seq == batch.position) == sorted(
        u.id for u in users[1:])
    mailed = await mail_to(storage, users, batch.id)
    assert len(mailed) == MANY - 1 and not any(users[1].email in m for m in mailed)
    assert [e.count for e in bus.published if isinstance(e, MailQueued)] == [MANY - 1]

    assert await notifications.spread_held() == 0  # nothing left: nothing twice
    assert len(await mail_to(storage, users, batch.id)) == MANY - 1


async def test_a_batch_left_behind_is_written_by_whoever_comes_next_and_once(
        storage: Adapter) -> None:
    first, _ = service(storage)
    users = await members(storage, MANY)
    await first.announce(SYSTEM, "Left behind", "Its process stopped.", None,
                         Audience(cabinet_id=users[0].cabinet_id))
    # Two processes started after it both look for held batches at once.
    second, third = service(storage), service(storage)
    counts = await asyncio.gather(second[0].spread_held(), third[0].spread_held())
    assert sorted(counts) == [0, 1]
    for user in (users[0], users[-1]):
        async with storage.unit_of_work() as uow:
            mine = await uow.notifications.after(user.id, 0, 10)
        assert [n.title for n in mine] == ["Left behind"]


async def test_a_few_recipients_are_written_at_once(storage: Adapter) -> None:
    notifications, bus = service(storage)
    users = await members(storage, 3)
    told = await notifications.announce(SYSTEM, "Small", "Three people.", None,
                                        Audience(cabinet_id=users[0].cabinet_id))
    assert told == 3
    [event] = [e for e in bus.published if isinstance(e, NotificationsCreated)]
    assert event.held is False
    async with storage.unit_of_work() as uow:
        assert await uow.notifications.held(10) == []
        got = await uow.notifications.after(users[2].id, 0, 10)
    assert [(n.id, n.title) for n in got] == [
        (event.batch.notification_id(users[2].id), "Small")]
    assert len(await mail_to(storage, users, event.batch.id)) == 3


async def test_changing_a_held_notification_writes_the_batch_first(storage: Adapter) -> None:
    notifications, bus = service(storage)
    users = await members(storage, MANY)
    cabinet_id = users[0].cabinet_id
    await notifications.announce(SYSTEM, "One", "First.", None, Audience(cabinet_id=cabinet_id))
    await notifications.announce(SYSTEM, "Two", "Second.", None, Audience(cabinet_id=cabinet_id))
    one, two = [e.batch for e in bus.published if isinstance(e, NotificationsCreated)]
    ann, bob = (Principal(u.id, u.email, u.role, cabinet_id, "/") for u in users[:2])
    # Paged while held: the cursor is a held notification's id.
    first, unread = await notifications.list_own(ann, PageRequest(limit=1))
    rest, _ = await notifications.list_own(ann, PageRequest.from_cursor(1, first.next_cursor))
    assert [n.title for n in [*first.items, *rest.items]] == ["Two", "One"] and unread == 2
    assert rest.next_cursor is None

    # Somebody else's id, held, is nobody else's to change; nothing is written for it.
    with pytest.raises(NotFound):
        await notifications.mark(bob, one.notification_id(ann.user_id or ""), True)
    async with storage.unit_of_work() as uow:
        assert len(await uow.notifications.held(10)) == 2
    # Deleting a held one writes the held batches first.
    await notifications.delete(bob, two.notification_id(bob.user_id or ""))
    async with storage.unit_of_work() as uow:
        assert await uow.notifications.held(10) == []
    page, unread = await notifications.list_own(bob, PageRequest())
    assert [n.title for n in page.items] == ["One"] and unread == 1
    marked = await notifications.mark(ann, one.notification_id(ann.user_id or ""), True)
    assert (marked.title, marked.read_at is not None) == ("One", True)
    # Read-all takes in what is still held.
    await notifications.announce(SYSTEM, "Three", "Third.", None,
                                 Audience(cabinet_id=cabinet_id))
    carl = Principal(users[2].id, users[2].email, users[2].role, cabinet_id, "/")
    assert await notifications.read_all(carl) == 3
    assert await notifications.unread_count(carl) == 0
    page, unread = await notifications.list_own(ann, PageRequest(limit=1))
    assert [n.title for n in page.items] == ["Three"] and unread == 2
    second, _ = await notifications.list_own(ann, PageRequest.from_cursor(1, page.next_cursor))
    third, _ = await notifications.list_own(ann, PageRequest.from_cursor(1, second.next_cursor))
    assert [(n.title, n.read_at is not None) for n in [*second.items, *third.items]] == [
        ("Two", False), ("One", True)]
    assert third.next_cursor is None


@pytest.mark.postgres
@pytest.mark.parametrize("storage", ["postgres"], indirect=True)
async def test_a_reader_never_sees_a_position_without_those_below_it(
        storage: Adapter, monkeypatch: pytest.MonkeyPatch) -> None:
    # PostgreSQL reads each statement at its own moment. While one reader is between its
    # statements, an announcement to many is held (a lower position) and a message to one
    # user written at once (a higher one): the reader must not return the higher alone,
    # or a stream would resume past the lower and never get it.
    notifications, _ = service(storage)
    elsewhere, _ = service(storage)
    users = await members(storage, MANY)
    ann = Principal(users[0].id, users[0].email, users[0].role, users[0].cabinet_id, "/")
    before = await newest(storage)
    seen = notifications_module._view

    async def meanwhile(uow: object, user_id: str | None = None) -> object:
        view = await seen(uow, user_id)  # type: ignore[arg-type]
        await elsewhere.announce(SYSTEM, "Held", "To many.", None,
                                 Audience(cabinet_id=users[0].cabinet_id))
        async with storage.unit_of_work() as other:
            await Notifier(Clock(), IDS, composer()).send(  # type: ignore[arg-type]
                other, [users[0].id], Message(NotificationKind.ANNOUNCEMENT, "Alone", "."))
            await other.commit()
        return view

    monkeypatch.setattr(notifications_module, "_view", meanwhile)
    assert await notifications.after(ann, before, 10) == []  # neither yet: both came later
    # The next reader has the first two, and not the two made while it read.
    found, read_up_to = await notifications.since(before, [users[0].id], 10)
    assert [(n.title, n.seq) for n in found] == [("Held", before + 1), ("Alone", before + 2)]
    assert read_up_to == before + 2
    monkeypatch.undo()
    got = await notifications.after(ann, before, 10)
    assert [n.title for n in got] == ["Held", "Alone", "Held", "Alone"]
    assert [n.seq for n in got] == sorted(n.seq for n in got)


async def test_positions_start_above_every_number_a_stream_has_seen(
        blank: BlankDatabase) -> None:
    """Migration 0011 on a database numbered per user: a user whose newest notification
    (number 5) was deleted after number 7 was seen must not be sent 6 or 7 again."""
    dialect = "sqlite" if blank.backend == "sqlite" else "postgres"
    earlier = [m for m in load_migrations(dialect) if m.version < 11]
    behind_the_back(blank, [s for m in earlier for s in m.statements] + [
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TIMESTAMPTZ NOT NULL)"] + [
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES"
        f" ({m.version}, '{m.name}', '2026-01-01T00:00:00+00:00')" for m in earlier])
    storage = await blank.open_storage()
    cabinet = new_cabinet()
    ann = new_user(cabinet)
    # As the code of that day wrote them: today's would write columns added since.
    behind_the_back(blank, [
        "INSERT INTO cabinets (id, name, kind, parent_id, path, external_id, created_at,"
        f" updated_at) VALUES ('{cabinet.id}', 'Old', 'customer', NULL, '{cabinet.path}',"
        " NULL, '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')",
        "INSERT INTO users (id, email, email_key, name, role, cabinet_id, active, created_at,"
        f" updated_at) VALUES ('{ann.id}', '{ann.email}', '{ann.email_key}', 'Ann',"
        f" 'customer_user', '{cabinet.id}', TRUE, '2026-01-01T00:00:00+00:00',"
        " '2026-01-01T00:00:00+00:00')",
        f"UPDATE users SET notification_seq = 7 WHERE id = '{ann.id}'",
        "INSERT INTO notifications (id, user_id, seq, kind, title, body, created_at)"
        f" VALUES ('n5', '{ann.id}', 5, 'announcement', 'Five', '', '2026-01-01T00:00:00Z')"])

    later = [m.label for m in load_migrations(dialect) if m.version >= 11]
    assert await storage.migrate() == later and later[0].startswith("0011")

    async with storage.unit_of_work() as uow:
        assert await uow.notifications.position() == 7
        [next_one] = await add(uow, [ann.id], Message(
            NotificationKind.ANNOUNCEMENT, "Eight", ""), T0)
        await uow.commit()
    assert next_one.seq == 8
    async with storage.unit_of_work() as uow:
        assert [n.seq for n in await uow.notifications.after(ann.id, 0, 10)] == [5, 8]


def behind_the_back(blank: BlankDatabase, statements: list[str]) -> None:
    if blank.backend == "sqlite":
        with closing(sqlite3.connect(blank.location)) as conn:
            for statement in statements:
                conn.execute(statement)
            conn.commit()
        return
    with closing(psycopg2.connect(blank.location)) as conn, conn.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
        conn.commit()
