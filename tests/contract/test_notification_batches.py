"""A message to more users than one transaction writes at once: stored as one batch when it
is made (the live streams have it at once), its notifications and e-mail written from it
just after, exactly once, by the first who comes: the background writer, a reader of
notifications, or a process started after one that stopped. On every storage adapter."""

from __future__ import annotations

import asyncio

from app.config import PROJECT_ROOT
from app.domain.notifications import NotificationKind, Preference, notification_id
from app.domain.paging import PageRequest
from app.domain.users import SYSTEM, Principal, User
from app.services.mail import QUEUED, EmailComposer, MailPolicy
from app.services.notifications import (
    CREATED,
    INLINE_RECIPIENTS,
    Audience,
    NotificationService,
    Notifier,
    delivered,
)
from tests.contract.test_notifications_storage import members, newest
from tests.contract.test_storage import IDS, T0, Adapter, storage
from tests.fakes import RecordingEventBus

__all__ = ["storage"]  # the fixture, shared with test_storage

MANY = INLINE_RECIPIENTS + 30


class Clock:
    def now(self) -> object:
        return T0


def service(storage: Adapter) -> tuple[NotificationService, RecordingEventBus]:
    """The notification service as one portal process runs it."""
    bus = RecordingEventBus()
    composer = EmailComposer(MailPolicy(sender="portal@portal.test",
                                        base_url="https://portal.test", brand="Acme",
                                        templates=PROJECT_ROOT / "templates"))
    clock = Clock()
    return NotificationService(storage, clock, IDS, bus,  # type: ignore[arg-type]
                               Notifier(clock, IDS, composer)), bus  # type: ignore[arg-type]


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
    [event] = [e for e in bus.published if e.name == CREATED]
    batch = delivered(event)
    assert event.data["held"] is True
    assert batch.position == before + 1 == await newest(storage)
    assert sorted(batch.users) == sorted(u.id for u in users[1:])
    assert not [e for e in bus.published if e.name == QUEUED]
    # Held: one row, not MANY, and no e-mail yet.
    async with storage.unit_of_work() as uow:
        [held] = await uow.notifications.held(10)
        assert (held.position, held.id, held.message) == (batch.position, batch.id,
                                                          batch.message)
        assert sorted(held.audience) == sorted(u.id for u in users)
        assert await uow.notifications.after(users[5].id, 0, 10) == []
    assert await mail_to(storage, users, batch.id) == []

    # A reader comes first: it finds the announcement, by the id its stream was told.
    reader = users[5]
    page, unread = await notifications.list_own(
        Principal(reader.id, reader.email, reader.role, cabinet_id, "/"), PageRequest())
    assert [(n.id, n.seq, n.title) for n in page.items] == [
        (batch.notification_id(reader.id), batch.position, "Maintenance")]
    assert unread == 1
    # Written once, with the e-mail of everyone but the one who turned e-mail off.
    async with storage.unit_of_work() as uow:
        assert await uow.notifications.held(10) == []
        assert await uow.notifications.after(users[0].id, 0, 10) == []
        stored = await uow.notifications.since(batch.position, 10 * MANY)
    assert sorted(n.user_id for n in stored if n.seq == batch.position) == sorted(
        u.id for u in users[1:])
    mailed = await mail_to(storage, users, batch.id)
    assert len(mailed) == MANY - 1 and not any(users[1].email in m for m in mailed)
    assert [e.data["count"] for e in bus.published if e.name == QUEUED] == [MANY - 1]

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
    [event] = [e for e in bus.published if e.name == CREATED]
    assert event.data["held"] is False
    async with storage.unit_of_work() as uow:
        assert await uow.notifications.held(10) == []
        got = await uow.notifications.after(users[2].id, 0, 10)
    assert [(n.id, n.title) for n in got] == [
        (delivered(event).notification_id(users[2].id), "Small")]
    assert len(await mail_to(storage, users, event.data["id"])) == 3
