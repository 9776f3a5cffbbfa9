"""The storage port's contract for notifications and their settings, run against every adapter.

Fixtures and helpers come from test_storage: the same backends, the same shared PostgreSQL
database, so every test makes its own cabinets, users and products and asserts only on theirs
(the questions about every user, like `muted` and `recipients_all`, are asked of ours only).
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

from app.domain.cabinets import Cabinet
from app.domain.licensing import Certificate, License
from app.domain.notifications import (
    Batch,
    Message,
    Notification,
    NotificationKind,
    Preference,
    notification_id,
)
from app.domain.paging import PageRequest
from app.domain.products import Product
from app.domain.users import User
from ports.storage import UnitOfWork
from tests.contract.test_storage import (
    IDS,
    SECOND,
    T0,
    Adapter,
    add_all,
    add_documents,
    catalogue,
    new_cabinet,
    new_user,
    storage,
    unique,
    walk_pages,
)

__all__ = ["storage"]  # the fixture, shared with test_storage

# Other zones than T0's: instants must come back equal (and aware) whatever zone they had.
INDIA = timezone(timedelta(hours=5, minutes=30))
NEW_YORK = timezone(timedelta(hours=-5))
# Enough for every notification a test here makes for one user.
ALL = 1000
# License numbers unique in this process: random ones meet now and then in the shared database.
_NUMBERS = itertools.count(secrets.randbelow(400_000))


def message() -> Message:
    return Message(NotificationKind.ANNOUNCEMENT, unique("Title “ünïcode”"),
                   "Line one\n\nNëw “quoted” text", "/announcements")


async def members(storage: Adapter, count: int,
                  cabinet: Cabinet | None = None) -> list[User]:
    """`count` active users of one cabinet (a new one unless given, and then already stored)."""
    home = cabinet or new_cabinet()
    users = [new_user(home) for _ in range(count)]
    await add_all(storage, *([] if cabinet else [home]), *users)
    return users


async def add_users(storage: Adapter, *users: User) -> tuple[User, ...]:
    await add_all(storage, *users)
    return users


async def add(uow: UnitOfWork, user_ids: list[str], sent: Message, at: datetime,
              batch_id: str | None = None) -> list[Notification]:
    """One message's notification for each of these users, at the next position, written
    as the notifier writes them; each id is derived from the batch's."""
    batch = Batch(position=await uow.notifications.next_position(),
                  id=batch_id or IDS.new_id(), message=sent, created_at=at,
                  users=tuple(user_ids), audience=())
    await uow.notifications.write(batch)
    return [batch.notification(user_id) for user_id in user_ids]


async def notify(storage: Adapter, users: list[User], sent: Message | None = None,
                 at: datetime = T0) -> list[Notification]:
    """One notification for each of `users`, in a unit of work of its own, committed."""
    async with storage.unit_of_work() as uow:
        made = await add(uow, [u.id for u in users], sent or message(), at)
        await uow.commit()
    assert len(made) == len(users)
    return made


async def one_each(storage: Adapter, user: User, count: int) -> list[Notification]:
    """`count` notifications for `user`, one unit of work each."""
    return [(await notify(storage, [user]))[0] for _ in range(count)]


async def stored_of(storage: Adapter, user: User) -> list[Notification]:
    """Every notification of the user, oldest first."""
    async with storage.unit_of_work() as uow:
        return await uow.notifications.after(user.id, 0, ALL)


async def delete_user(storage: Adapter, user: User) -> None:
    """Deleted, but still active: only the deletion keeps them from being told."""
    user.email_key = None
    user.deleted_at = user.updated_at = T0 + SECOND
    async with storage.unit_of_work() as uow:
        await uow.users.update(user)
        await uow.commit()


def seqs(notifications: list[Notification], base: int = 0) -> list[int]:
    """Their positions, counted from `base` (the position before the test made any)."""
    return [n.seq - base for n in notifications]


async def newest(storage: Adapter) -> int:
    async with storage.unit_of_work() as uow:
        return await uow.notifications.position()


def notification_ids(notifications: list[Notification]) -> list[str]:
    return [n.id for n in notifications]


# --- add and read back -----------------------------------------------------------------------

async def test_add_numbers_each_message_in_order_and_round_trips_it(
        storage: Adapter) -> None:
    ann, bob, quiet = await members(storage, 3)
    base = await newest(storage)
    nobody = IDS.new_id()
    linked = Message(NotificationKind.SECURITY_PUBLISHED, "Security fix: “Agent” 2.1",
                     "Line one\n\n* ünïcode body", "/products/p#release-r")
    plain = Message(NotificationKind.LICENSE_EXPIRING, unique("Expiring"), "", None)
    at_first, at_second = T0.astimezone(INDIA), T0.astimezone(NEW_YORK) + SECOND
    # Not in user id order: each id stays paired with its user whatever order the adapter
    # writes them in.
    high, low = sorted([ann.id, bob.id], reverse=True)
    first_batch, second_batch = IDS.new_id(), IDS.new_id()
    first_ids = [notification_id(first_batch, user_id) for user_id in (high, low)]
    second_id = notification_id(second_batch, ann.id)
    async with storage.unit_of_work() as uow:
        first = await add(uow, [high, low], linked, at_first, first_batch)
        second = await add(uow, [ann.id], plain, at_second, second_batch)
        await uow.commit()
    third = await notify(storage, [bob, ann], plain)  # a unit of work of its own

    expected_first = {
        high: Notification(id=first_ids[0], user_id=high, seq=base + 1, kind=linked.kind,
                           title=linked.title, body=linked.body, link=linked.link,
                           created_at=at_first),
        low: Notification(id=first_ids[1], user_id=low, seq=base + 1, kind=linked.kind,
                          title=linked.title, body=linked.body, link=linked.link,
                          created_at=at_first)}
    assert {n.user_id: n for n in first} == expected_first
    assert len(first) == 2
    assert second == [Notification(id=second_id, user_id=ann.id, seq=base + 2, kind=plain.kind,
                                   title=plain.title, body=plain.body, link=None,
                                   created_at=at_second)]
    assert {(n.user_id, n.seq - base) for n in third} == {(ann.id, 3), (bob.id, 3)}

    async with storage.unit_of_work() as uow:
        of_ann = await uow.notifications.after(ann.id, 0, ALL)
        of_bob = await uow.notifications.after(bob.id, 0, ALL)
        last = await uow.notifications.position()
        of_quiet = await uow.notifications.after(quiet.id, 0, ALL)
        unread = await uow.notifications.unread_count(ann.id)
        listed_nobody = await uow.notifications.list_for_user(nobody, PageRequest())
        after_nobody = await uow.notifications.after(nobody, 0, ALL)
        # A notification is reached only under its owner.
        stray = [await uow.notifications.set_read(user_id, second_id, T0)
                 for user_id in (nobody, bob.id, quiet.id)]

    third_of = {n.user_id: n for n in third}
    assert of_ann == [expected_first[ann.id], second[0], third_of[ann.id]]
    assert of_bob == [expected_first[bob.id], third_of[bob.id]]
    # One position a message, in the order committed: a user's are rising, not consecutive.
    assert seqs(of_ann, base) == [1, 2, 3] and seqs(of_bob, base) == [1, 3]
    # Field by field, with the types the domain uses.
    got = of_ann[0]
    assert (got.id, got.user_id, got.seq, got.title, got.body, got.link) == (
        expected_first[ann.id].id, ann.id, base + 1, linked.title, linked.body,
        "/products/p#release-r")
    assert got.kind is NotificationKind.SECURITY_PUBLISHED
    assert of_ann[1].kind is NotificationKind.LICENSE_EXPIRING and of_ann[1].link is None
    assert all(type(n.kind) is NotificationKind for n in of_ann + of_bob)
    assert all(type(n.seq) is int for n in of_ann + of_bob)
    assert (of_ann[0].created_at, of_ann[1].created_at) == (T0, T0 + SECOND)
    assert all(n.created_at.utcoffset() is not None for n in of_ann + of_bob)
    assert all(n.read_at is None for n in of_ann + of_bob)
    assert last == base + 3 and of_quiet == []
    assert unread == 3
    assert listed_nobody == [] and after_nobody == []
    assert stray == [None, None, None]


async def test_an_uncommitted_add_is_undone_and_its_number_freed(storage: Adapter) -> None:
    (ann,) = await members(storage, 1)
    base = await newest(storage)
    (kept,) = await notify(storage, [ann])
    async with storage.unit_of_work() as uow:
        dropped = await add(uow, [ann.id], message(), T0)
        dropped_id = dropped[0].id
        assert seqs(dropped, base) == [2]

    async with storage.unit_of_work() as uow:
        assert await uow.notifications.position() == base + 1
        assert await uow.notifications.after(ann.id, 0, ALL) == [kept]
        assert await uow.notifications.unread_count(ann.id) == 1
        assert await uow.notifications.set_read(ann.id, dropped_id, T0) is None
    (again,) = await notify(storage, [ann])
    assert again.seq == base + 2
    assert seqs(await stored_of(storage, ann), base) == [1, 2]


# --- numbering under concurrency -------------------------------------------------------------

async def test_concurrent_adds_number_one_after_the_other(storage: Adapter) -> None:
    (ann,) = await members(storage, 1)
    base = await newest(storage)
    writers = 10
    rolled_back = {3, 7}  # these leave without commit: their numbers go to the next writer
    done = asyncio.Event()
    seen: list[list[int]] = []

    async def write(n: int) -> Notification | None:
        async with storage.unit_of_work() as uow:
            (made,) = await add(uow, [ann.id], message(), T0)
            await asyncio.sleep(0.02)  # hold the number while the other writers arrive
            if n in rolled_back:
                return None
            await uow.commit()
            return made

    async def watch() -> None:
        """What a reconnecting stream reads meanwhile: never a number before a lower one."""
        while not done.is_set():
            async with storage.unit_of_work() as uow:
                seen.append(seqs(await uow.notifications.after(ann.id, 0, ALL)))
            await asyncio.sleep(0.005)

    async with asyncio.timeout(30):  # a deadlock fails the test instead of hanging it
        watcher = asyncio.create_task(watch())
        try:
            results = await asyncio.gather(*(write(n) for n in range(writers)))
        finally:
            done.set()
            await watcher

    committed = [made for made in results if made is not None]
    count = writers - len(rolled_back)
    assert sorted(seqs(committed, base)) == list(range(1, count + 1))
    stored = await stored_of(storage, ann)
    assert seqs(stored, base) == list(range(1, count + 1))
    assert sorted(notification_ids(stored)) == sorted(notification_ids(committed))
    assert {n.id: n.seq for n in stored} == {n.id: n.seq for n in committed}
    async with storage.unit_of_work() as uow:
        assert await uow.notifications.position() == base + count
        assert await uow.notifications.unread_count(ann.id) == count
    assert seen  # the watcher did look
    for numbers in seen:
        assert numbers == list(range(base + 1, base + len(numbers) + 1)), numbers


async def test_writers_for_two_users_in_opposite_orders_do_not_deadlock(
        storage: Adapter) -> None:
    ann, bob = await members(storage, 2)
    base = await newest(storage)
    rounds = 5

    async def write(order: list[User]) -> list[Notification]:
        async with storage.unit_of_work() as uow:
            made = await add(uow, [u.id for u in order], message(), T0)
            await asyncio.sleep(0.02)
            await uow.commit()
            return made

    for _ in range(rounds):
        async with asyncio.timeout(10):
            one, two = await asyncio.gather(write([ann, bob]), write([bob, ann]))
        assert len(one) == len(two) == 2

    for user in (ann, bob):
        stored = await stored_of(storage, user)
        assert seqs(stored, base) == list(range(1, 2 * rounds + 1))
        assert all(n.user_id == user.id for n in stored)


async def test_an_add_for_more_users_than_a_statement_holds_numbers_every_one(
        storage: Adapter) -> None:
    many = await members(storage, 1234)  # more than two batches of 500 rows
    await notify(storage, many[:10])  # some already have one
    writers = [list(reversed(many)), many[5:]]  # overlapping, in opposite orders
    async with asyncio.timeout(60):  # a deadlock fails the test instead of hanging it
        made = await asyncio.gather(*(notify(storage, users) for users in writers))
    assert [len(m) for m in made] == [1234, 1229]
    assert [n.user_id for n in made[0]] == [u.id for u in reversed(many)]
    assert len({n.seq for n in made[0] + made[1]}) == 2  # one position each
    for user in (many[0], many[7], many[-1]):
        stored = await stored_of(storage, user)
        assert seqs(stored) == sorted(set(seqs(stored)))
        assert len(stored) == 1 + (user in many[:10]) + (user in many[5:])


# --- reading -----------------------------------------------------------------------------------

async def test_after_gives_those_above_a_number_oldest_first(storage: Adapter) -> None:
    ann, bob = await members(storage, 2)
    b = await newest(storage)
    made: list[Notification] = []
    for n in range(6):
        made.extend(await notify(storage, [ann] if n % 2 else [ann, bob]))
    mine = [n for n in made if n.user_id == ann.id]
    theirs = [n for n in made if n.user_id == bob.id]

    async with storage.unit_of_work() as uow:
        everything = await uow.notifications.after(ann.id, 0, ALL)
        middle = await uow.notifications.after(ann.id, b + 2, 3)
        one = await uow.notifications.after(ann.id, 0, 1)
        last = await uow.notifications.after(ann.id, b + 5, 10)
        none_left = await uow.notifications.after(ann.id, b + 6, 10)
        beyond = await uow.notifications.after(ann.id, b + 60, 10)
        of_bob = await uow.notifications.after(bob.id, b + 1, 10)
        between = await uow.notifications.after(bob.id, b + 2, 10)  # not one of bob's

    assert seqs(mine, b) == [1, 2, 3, 4, 5, 6] and seqs(theirs, b) == [1, 3, 5]
    assert everything == mine
    assert middle == mine[2:5]
    assert seqs(middle, b) == [3, 4, 5]
    assert one == mine[:1]
    assert last == mine[5:]
    assert none_left == [] and beyond == []
    assert of_bob == theirs[1:] and between == theirs[1:]
    assert all(n.user_id == bob.id for n in of_bob)


async def test_list_for_user_pages_newest_first_without_gaps(storage: Adapter) -> None:
    ann, bob = await members(storage, 2)
    # Batches whose ids for ann fall as their positions rise: paging follows positions,
    # never the order of ids.
    batches = sorted((IDS.new_id() for _ in range(7)), reverse=True,
                     key=lambda batch_id: notification_id(batch_id, ann.id))
    made: list[Notification] = []
    for number, batch_id in enumerate(batches):
        async with storage.unit_of_work() as uow:
            made.extend(await add(uow, [ann.id], message(), T0, batch_id))
            if number % 2:
                made.extend(await add(uow, [bob.id], message(), T0))
            await uow.commit()
    mine = [n for n in made if n.user_id == ann.id]
    theirs = [n for n in made if n.user_id == bob.id]
    read_at = T0 + SECOND
    async with storage.unit_of_work() as uow:
        for notification in (mine[1], mine[4]):
            assert await uow.notifications.set_read(ann.id, notification.id, read_at)
        await uow.commit()
    mine[1], mine[4] = replace(mine[1], read_at=read_at), replace(mine[4], read_at=read_at)
    expected = list(reversed(mine))
    expected_unread = [n for n in expected if n.read_at is None]
    # Newest first is not the ids' order (here they rise)...
    assert notification_ids(expected) == sorted(n.id for n in mine)
    assert seqs(expected) == sorted(set(seqs(expected)), reverse=True)  # ...but positions'

    async with asyncio.timeout(10):  # a cursor that does not advance fails, not hangs
        async with storage.unit_of_work() as uow:
            first_page = await uow.notifications.list_for_user(ann.id, PageRequest(limit=3))
            everything = await uow.notifications.list_for_user(ann.id, PageRequest(limit=50))
            walks = {limit: await walk_pages(
                lambda page: uow.notifications.list_for_user(ann.id, page), limit)
                for limit in (1, 2, 3, 6, 7, 8)}
            unread = {limit: await walk_pages(
                lambda page: uow.notifications.list_for_user(ann.id, page, unread_only=True),
                limit) for limit in (1, 2, 5, 6)}
            after_last = await uow.notifications.list_for_user(
                ann.id, PageRequest(limit=3, after=expected[-1].id))
            of_bob = await walk_pages(
                lambda page: uow.notifications.list_for_user(bob.id, page), 1)
            # Another user's cursor never brings theirs.
            with_bobs_cursor = await uow.notifications.list_for_user(
                ann.id, PageRequest(after=theirs[-1].id))
            of_nobody = await uow.notifications.list_for_user(IDS.new_id(), PageRequest())

    assert first_page == expected[:4]
    assert everything == expected
    for limit, walked in walks.items():
        assert walked == expected, limit
    for limit, walked in unread.items():
        assert walked == expected_unread, limit
        assert all(n.read_at is None for n in walked)
    assert after_last == []
    assert of_bob == list(reversed(theirs))
    assert all(n.user_id == ann.id for n in with_bobs_cursor)
    assert of_nobody == []


async def test_list_for_user_narrows_by_kind_and_counts_what_it_pages_through(
        storage: Adapter) -> None:
    ann, bob = await members(storage, 2)
    security = Message(NotificationKind.SECURITY_PUBLISHED, "Fix", "Patch now.", None)
    made = [*(await notify(storage, [ann, bob])), *(await notify(storage, [ann], security)),
            *(await notify(storage, [ann])), *(await notify(storage, [ann], security))]
    mine = [n for n in made if n.user_id == ann.id]
    async with storage.unit_of_work() as uow:
        assert await uow.notifications.set_read(ann.id, mine[1].id, T0 + SECOND)
        await uow.commit()
    up_to = await newest(storage)
    async with storage.unit_of_work(read_only=True) as uow:
        fixes = await uow.notifications.list_for_user(
            ann.id, PageRequest(ALL), up_to=up_to, kind=NotificationKind.SECURITY_PUBLISHED)
        assert notification_ids(fixes) == [mine[3].id, mine[1].id]
        counts = [await uow.notifications.count_for_user(ann.id, up_to, unread, kind)
                  for unread in (False, True)
                  for kind in (None, NotificationKind.SECURITY_PUBLISHED)]
        assert counts == [4, 2, 3, 1]
        assert await uow.notifications.count_for_user(bob.id, up_to) == 1
        assert await uow.notifications.count_for_user(ann.id, up_to=mine[0].seq) == 1


async def test_an_unread_cursor_read_since_still_pages_on(storage: Adapter) -> None:
    (ann,) = await members(storage, 1)
    mine = await one_each(storage, ann, 5)
    async with storage.unit_of_work() as uow:
        first = await uow.notifications.list_for_user(ann.id, PageRequest(limit=2),
                                                      unread_only=True)
        assert first[:2] == [mine[4], mine[3]]
        # The reader opens the newest; the next page still starts below the cursor.
        assert await uow.notifications.set_read(ann.id, first[1].id, T0) is not None
        rest = await uow.notifications.list_for_user(
            ann.id, PageRequest(limit=2, after=first[1].id), unread_only=True)
    assert rest == [mine[2], mine[1], mine[0]]


# --- read state ------------------------------------------------------------------------------

async def test_set_read_marks_and_unmarks_only_the_owners(storage: Adapter) -> None:
    ann, bob = await members(storage, 2)
    mine = await one_each(storage, ann, 3)
    (theirs,) = await notify(storage, [bob])
    moment = datetime(2031, 6, 7, 8, 9, 10, 654321, tzinfo=INDIA)

    async with storage.unit_of_work() as uow:
        marked = await uow.notifications.set_read(ann.id, mine[1].id, moment)
        not_mine = await uow.notifications.set_read(ann.id, theirs.id, moment)
        not_bobs = await uow.notifications.set_read(bob.id, mine[0].id, moment)
        unknown = await uow.notifications.set_read(ann.id, IDS.new_id(), moment)
        await uow.commit()

    assert marked == replace(mine[1], read_at=moment)
    assert marked is not None and marked.read_at is not None
    assert marked.read_at.utcoffset() is not None
    assert not_mine is None and not_bobs is None and unknown is None
    async with storage.unit_of_work() as uow:
        assert await uow.notifications.unread_count(ann.id) == 2
        assert await uow.notifications.unread_count(bob.id) == 1
    assert await stored_of(storage, ann) == [mine[0], replace(mine[1], read_at=moment), mine[2]]
    assert await stored_of(storage, bob) == [theirs]

    async with storage.unit_of_work() as uow:
        unmarked = await uow.notifications.set_read(ann.id, mine[1].id, None)
        assert await uow.notifications.set_read(bob.id, mine[1].id, None) is None
        await uow.commit()
    assert unmarked == mine[1]
    assert await stored_of(storage, ann) == mine
    async with storage.unit_of_work() as uow:
        assert await uow.notifications.unread_count(ann.id) == 3


async def test_an_uncommitted_read_is_undone(storage: Adapter) -> None:
    (ann,) = await members(storage, 1)
    (mine,) = await notify(storage, [ann])
    async with storage.unit_of_work() as uow:
        assert await uow.notifications.set_read(ann.id, mine.id, T0) is not None
        assert await uow.notifications.read_all(ann.id, T0) == 0
        assert await uow.notifications.unread_count(ann.id) == 0
    assert await stored_of(storage, ann) == [mine]


async def test_read_all_marks_the_owners_unread_ones(storage: Adapter) -> None:
    ann, bob = await members(storage, 2)
    mine = await one_each(storage, ann, 4)
    theirs = await one_each(storage, bob, 2)
    async with storage.unit_of_work() as uow:
        assert await uow.notifications.set_read(ann.id, mine[2].id, T0) is not None
        await uow.commit()

    async with storage.unit_of_work() as uow:
        marked = await uow.notifications.read_all(ann.id, T0 + SECOND)
        await uow.commit()
    async with storage.unit_of_work() as uow:
        again = await uow.notifications.read_all(ann.id, T0 + 2 * SECOND)
        of_nobody = await uow.notifications.read_all(IDS.new_id(), T0)
        counts = (await uow.notifications.unread_count(ann.id),
                  await uow.notifications.unread_count(bob.id))
        await uow.commit()

    assert marked == 3
    assert again == 0 and of_nobody == 0
    assert counts == (0, 2)
    # Marked when read_all ran, except the one already read before.
    assert [n.read_at for n in await stored_of(storage, ann)] == [
        T0 + SECOND, T0 + SECOND, T0, T0 + SECOND]
    assert await stored_of(storage, bob) == theirs


# --- delete ----------------------------------------------------------------------------------

async def test_delete_removes_only_the_owners(storage: Adapter) -> None:
    ann, bob = await members(storage, 2)
    mine = await one_each(storage, ann, 3)
    (theirs,) = await notify(storage, [bob])

    async with storage.unit_of_work() as uow:
        not_mine = await uow.notifications.delete(ann.id, theirs.id)
        not_bobs = await uow.notifications.delete(bob.id, mine[2].id)
        deleted = await uow.notifications.delete(ann.id, mine[2].id)
        twice = await uow.notifications.delete(ann.id, mine[2].id)
        unknown = await uow.notifications.delete(ann.id, IDS.new_id())
        await uow.commit()

    assert (not_mine, not_bobs, deleted, twice, unknown) == (False, False, True, False, False)
    assert await stored_of(storage, bob) == [theirs]
    assert await stored_of(storage, ann) == mine[:2]
    async with storage.unit_of_work() as uow:
        assert await uow.notifications.list_for_user(ann.id, PageRequest()) == [
            mine[1], mine[0]]
        assert await uow.notifications.unread_count(ann.id) == 2
        # Positions are never given twice: a stream that saw 3 must not miss the next one.
        assert await uow.notifications.position() >= theirs.seq > mine[2].seq
    (next_one,) = await notify(storage, [ann])
    assert next_one.seq == await newest(storage) > theirs.seq


async def test_an_uncommitted_delete_is_undone(storage: Adapter) -> None:
    (ann,) = await members(storage, 1)
    (mine,) = await notify(storage, [ann])
    async with storage.unit_of_work() as uow:
        assert await uow.notifications.delete(ann.id, mine.id) is True
        assert await uow.notifications.after(ann.id, 0, ALL) == []
    assert await stored_of(storage, ann) == [mine]


# --- preferences -----------------------------------------------------------------------------

async def test_preferences_keep_only_what_the_user_chose(storage: Adapter) -> None:
    ann, bob = await members(storage, 2)
    release, announcement = NotificationKind.RELEASE_PUBLISHED, NotificationKind.ANNOUNCEMENT

    async with storage.unit_of_work() as uow:
        assert await uow.notifications.preferences(ann.id) == {}
        await uow.notifications.set_preferences(ann.id, {
            release: Preference(in_app=False, email=True),
            announcement: Preference(in_app=True, email=False)})
        await uow.commit()
    async with storage.unit_of_work() as uow:
        chosen = await uow.notifications.preferences(ann.id)
        of_bob = await uow.notifications.preferences(bob.id)
        # One kind again, the other left alone: an upsert, not a second row nor a wipe.
        await uow.notifications.set_preferences(ann.id, {
            release: Preference(in_app=True, email=False)})
        await uow.commit()
    async with storage.unit_of_work() as uow:
        changed = await uow.notifications.preferences(ann.id)
        await uow.notifications.set_preferences(ann.id, {
            release: Preference(in_app=False, email=False)})
        # Uncommitted: undone.

    assert chosen == {release: Preference(in_app=False, email=True),
                      announcement: Preference(in_app=True, email=False)}
    assert of_bob == {}
    assert changed == {release: Preference(in_app=True, email=False),
                       announcement: Preference(in_app=True, email=False)}
    assert all(type(kind) is NotificationKind for kind in changed)
    assert all(type(p.in_app) is bool and type(p.email) is bool for p in changed.values())
    async with storage.unit_of_work() as uow:
        assert await uow.notifications.preferences(ann.id) == changed


async def test_muted_lists_who_turned_a_kind_off_in_the_portal(storage: Adapter) -> None:
    ann, bob, cid, dan = await members(storage, 4)
    ours = {ann.id, bob.id, cid.id, dan.id}
    release, security = NotificationKind.RELEASE_PUBLISHED, NotificationKind.SECURITY_PUBLISHED
    async with storage.unit_of_work() as uow:
        await uow.notifications.set_preferences(ann.id, {release: Preference(False, True)})
        # Off by e-mail only: still told in the portal.
        await uow.notifications.set_preferences(bob.id, {release: Preference(True, False)})
        await uow.notifications.set_preferences(cid.id, {security: Preference(False, False),
                                                         release: Preference(True, True)})
        await uow.commit()

    async with storage.unit_of_work() as uow:
        muted_release = await uow.notifications.muted(release) & ours
        muted_security = await uow.notifications.muted(security) & ours
        muted_announcement = await uow.notifications.muted(NotificationKind.ANNOUNCEMENT) & ours
        await uow.notifications.set_preferences(ann.id, {release: Preference(True, True)})
        await uow.commit()
    async with storage.unit_of_work() as uow:
        muted_after = await uow.notifications.muted(release) & ours

    assert muted_release == {ann.id}
    assert muted_security == {cid.id}
    assert muted_announcement == set()
    assert muted_after == set()


# --- recipients ------------------------------------------------------------------------------

async def test_recipients_in_are_the_active_users_of_those_cabinets(storage: Adapter) -> None:
    home, neighbour, elsewhere = new_cabinet(), new_cabinet(), new_cabinet()
    below = new_cabinet(home)
    await add_all(storage, home, neighbour, elsewhere, below)
    first, second = await members(storage, 2, home)
    (idle,) = await add_users(storage, new_user(home, active=False))
    (gone,) = await members(storage, 1, home)
    await delete_user(storage, gone)
    (next_door,) = await members(storage, 1, neighbour)
    (underneath,) = await members(storage, 1, below)
    (far,) = await members(storage, 1, elsewhere)

    async with storage.unit_of_work() as uow:
        both = await uow.notifications.recipients_in([home.id, neighbour.id])
        only_below = await uow.notifications.recipients_in([below.id])
        no_cabinets = await uow.notifications.recipients_in([])
        unknown = await uow.notifications.recipients_in([IDS.new_id()])
        everyone = await uow.notifications.recipients_all()

    assert sorted(both) == sorted([first.id, second.id, next_door.id])
    assert only_below == [underneath.id]
    assert no_cabinets == [] and unknown == []
    assert len(everyone) == len(set(everyone))
    assert {first.id, second.id, next_door.id, underneath.id, far.id} <= set(everyone)
    assert idle.id not in everyone and gone.id not in everyone


ON, TODAY = date(2031, 3, 1), date(2031, 6, 1)
DAY = timedelta(days=1)
# label: valid_from, valid_to, revoked, told of a release published ON (seen on TODAY)
LICENSE_CASES: dict[str, tuple[date, date | None, bool, bool]] = {
    "valid both days": (date(2031, 1, 1), date(2032, 1, 1), False, True),
    "perpetual": (date(2031, 1, 1), None, False, True),
    "valid on the day, to its end": (date(2031, 1, 1), ON, False, True),
    "valid on the day alone": (ON, ON, False, True),
    "valid from today": (TODAY, date(2032, 1, 1), False, True),
    "valid to today": (ON + DAY, TODAY, False, True),
    "valid only in between": (ON + DAY, TODAY - DAY, False, False),
    "ended the day before": (date(2031, 1, 1), ON - DAY, False, False),
    "starts tomorrow": (TODAY + DAY, date(2032, 1, 1), False, False),
    "perpetual from tomorrow": (TODAY + DAY, None, False, False),
    "revoked": (date(2031, 1, 1), date(2032, 1, 1), True, False),
    "revoked perpetual": (date(2031, 1, 1), None, True, False),
}


def new_license(cabinet: Cabinet, product: Product, valid_from: date, valid_to: date | None,
                revoked: bool = False) -> License:
    return License(id=IDS.new_id(), number=f"LIC-2030-{next(_NUMBERS):06d}",
                   product_id=product.id, cabinet_id=cabinet.id, valid_from=valid_from,
                   valid_to=valid_to, revoked_at=T0 if revoked else None,
                   purchase_item=unique("ORD"), created_at=T0, updated_at=T0,
                   edition="Enterprise", seats=5)


def new_certificate(cabinet: Cabinet, product: Product) -> Certificate:
    return Certificate(id=IDS.new_id(), number=f"CRT-2030-{next(_NUMBERS):06d}",
                       product_id=product.id, cabinet_id=cabinet.id, valid_from=date(2031, 1, 1),
                       valid_to=date(2032, 1, 1), revoked_at=None, purchase_item=unique("ORD"),
                       created_at=T0, updated_at=T0, level="premium")


async def test_recipients_licensed_are_those_entitled_to_a_release(storage: Adapter) -> None:
    product, other = await catalogue(storage), await catalogue(storage)
    user_of: dict[str, str] = {}
    told: set[str] = set()
    held: list[License | Certificate] = []

    async def case(label: str, expected: bool) -> Cabinet:
        """A cabinet of its own with one active user, who is `expected` to be told."""
        home = new_cabinet()
        user = new_user(home)
        await add_all(storage, home, user)
        user_of[label] = user.id
        if expected:
            told.add(label)
        return home

    for label, (valid_from, valid_to, revoked, expected) in LICENSE_CASES.items():
        held.append(new_license(await case(label, expected), product, valid_from, valid_to,
                                revoked))
    held.append(new_license(await case("another product's license", False), other,
                            date(2031, 1, 1), None))
    home = await case("a revoked one and a valid one", True)
    held += [new_license(home, product, date(2031, 1, 1), None, revoked=True),
             new_license(home, product, date(2031, 1, 1), None)]
    home = await case("two valid ones", True)
    held += [new_license(home, product, date(2031, 1, 1), None),
             new_license(home, product, date(2031, 1, 1), date(2032, 1, 1))]
    await case("nothing held", False)
    held.append(new_certificate(await case("a support certificate only", False), product))
    # A licensed cabinet whose users are not all to be told.
    shared = await case("active beside an inactive and a deleted one", True)
    held.append(new_license(shared, product, date(2031, 1, 1), None))
    (idle,) = await add_users(storage, new_user(shared, active=False))
    (gone,) = await members(storage, 1, shared)
    await delete_user(storage, gone)
    user_of["inactive"], user_of["deleted"] = idle.id, gone.id
    await add_documents(storage, *held)
    label_of = {user_id: label for label, user_id in user_of.items()}

    async with storage.unit_of_work() as uow:
        published_on = await uow.notifications.recipients_licensed(product.id, ON, TODAY)
        # Asked about today alone, what was valid only on the earlier day no longer counts.
        today_only = await uow.notifications.recipients_licensed(product.id, TODAY, TODAY)
        of_other = await uow.notifications.recipients_licensed(other.id, ON, TODAY)
        of_unknown = await uow.notifications.recipients_licensed(IDS.new_id(), ON, TODAY)

    assert len(published_on) == len(set(published_on))  # once each, however many licenses
    assert {label_of.get(user_id, user_id) for user_id in published_on} == told
    assert {label_of.get(user_id, user_id) for user_id in today_only} == told - {
        "valid on the day, to its end", "valid on the day alone"}
    assert [label_of.get(user_id, user_id) for user_id in of_other] == [
        "another product's license"]
    assert of_unknown == []
