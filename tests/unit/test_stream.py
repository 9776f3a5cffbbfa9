"""The hub of live streams: delivery by user, a slow reader dropped without slowing others."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from app.domain.events import NotificationsCreated
from app.domain.notifications import Batch, Message, Notification, NotificationKind
from app.web.stream import HEARTBEAT, RESYNC, Listener, NotificationHub
from ports.events import Resumed

AT = datetime(2026, 11, 27, tzinfo=UTC)


def batch(seq: int, *user_ids: str) -> Batch:
    return Batch(position=seq, id=f"b{seq}", message=Message(
        NotificationKind.ANNOUNCEMENT, f"T{seq}", "B"), created_at=AT, users=user_ids,
        audience=user_ids)


def created(user_id: str, seq: int) -> NotificationsCreated:
    return NotificationsCreated(batch=batch(seq, user_id), held=False)


async def seq_of(listener: Listener) -> int:
    """The position of the next item, which must be a notification."""
    item = await listener.next()
    assert isinstance(item, Notification)
    return item.seq


class Storage:
    """What the hub reads when the bus lost or reordered something: these notifications."""

    def __init__(self, *batches: Batch, failing: bool = False) -> None:
        self.stored = sorted((b.notification(u) for b in batches for u in b.users),
                             key=lambda n: (n.seq, n.user_id))
        self.failing = failing
        self.reads: list[int] = []

    async def since(self, position: int, user_ids: list[str],
                    limit: int) -> tuple[list[Notification], int]:
        self.reads.append(position)
        if self.failing:
            raise OSError("the database is down")
        return [n for n in self.stored
                if n.seq >= position and n.user_id in user_ids][:limit], await self.newest()

    async def newest(self) -> int:
        return max((n.seq for n in self.stored), default=0)


def following(storage: Storage, newest: int, limit: int = 100) -> NotificationHub:
    hub = NotificationHub(queue_size=10, catch_up_limit=limit)
    hub.follow(newest, storage.since, storage.newest)
    return hub


async def taken(listener: Listener, count: int) -> list[tuple[int, str] | object]:
    got = [await listener.next() for _ in range(count)]
    return [(n.seq, n.title) if isinstance(n, Notification) else n for n in got]


async def test_each_listener_gets_its_users_notifications_in_order() -> None:
    hub = NotificationHub(queue_size=10)
    alice, bob = hub.attach("alice"), hub.attach("bob")
    for seq in (1, 2):
        await hub.on_event(created("alice", seq))
    await hub.on_event(created("bob", 1))
    assert [await seq_of(alice) for _ in range(2)] == [1, 2]
    got = await bob.next()
    assert isinstance(got, Notification) and (got.user_id, got.seq) == ("bob", 1)


async def test_a_reader_that_falls_behind_is_dropped_and_the_others_go_on() -> None:
    hub = NotificationHub(queue_size=3)
    slow, quick = hub.attach("alice"), hub.attach("alice")
    for seq in range(1, 6):
        await hub.on_event(created("alice", seq))
        assert await seq_of(quick) == seq
    assert slow.dropped and not quick.dropped
    held = [await slow.next() for _ in range(4)]
    # Then the end mark.
    assert [n.seq if isinstance(n, Notification) else None for n in held] == [1, 2, 3, None]


async def test_closing_ends_every_stream_and_new_ones_at_once() -> None:
    hub = NotificationHub()
    listener = hub.attach("alice")
    hub.close_all()
    assert await listener.next() is None
    assert await hub.attach("bob").next() is None
    hub.detach(listener)
    assert hub.open_streams == 1


async def test_ending_twice_and_offering_after_the_end_are_harmless() -> None:
    hub = NotificationHub(queue_size=1)
    listener = hub.attach("alice")
    await hub.on_event(created("alice", 1))
    hub.close_all()
    hub.close_all()
    await hub.on_event(created("alice", 2))  # after the end: ignored, never QueueFull
    assert [(await listener.next()) for _ in range(2)][1] is None


async def test_a_bus_that_is_back_makes_every_stream_look_in_storage() -> None:
    hub = NotificationHub(queue_size=2)
    alice, bob = hub.attach("alice"), hub.attach("bob")
    await hub.on_event(created("alice", 1))
    await hub.on_event(Resumed())
    assert [await alice.next() for _ in range(2)][1] is RESYNC
    assert await bob.next() is RESYNC
    for _ in range(5):  # one mark waits, however often the bus comes back meanwhile
        await hub.on_event(Resumed())
    await hub.on_event(created("bob", 1))
    assert not bob.dropped
    first, _ = [await bob.next() for _ in range(2)]
    assert first is RESYNC


# --- positions in order ----------------------------------------------------------------------

async def test_a_position_that_overtakes_one_below_it_waits_for_it_from_storage() -> None:
    # Two processes committed 11 then 12 and published at once: 12 came first. 11 is in
    # storage already (positions are committed in order), so the hub hands it on first.
    storage = Storage(batch(11, "alice"), batch(12, "alice", "bob"))
    hub = following(storage, newest=10)
    alice, bob = hub.attach("alice"), hub.attach("bob")
    await hub.on_event(created("alice", 12))
    await hub.on_event(NotificationsCreated(batch=batch(11, "alice"), held=False))
    await hub.on_event(created("alice", 13))
    assert await taken(alice, 3) == [(11, "T11"), (12, "T12"), (13, "T13")]
    assert storage.reads == [11]
    assert alice._items == []  # the late 11 was not handed on twice
    assert bob._items == []  # 12 was alice's in the event: bob gets nothing from it


async def test_what_the_bus_lost_while_away_arrives_when_it_is_back() -> None:
    storage = Storage(batch(5, "alice"), batch(6, "bob"), batch(7, "alice"))
    hub = following(storage, newest=4)
    alice, bob = hub.attach("alice"), hub.attach("bob")
    await hub.on_event(Resumed())
    assert await taken(alice, 2) == [(5, "T5"), (7, "T7")]
    assert await taken(bob, 1) == [(6, "T6")]
    await hub.catch_up()  # nothing newer: no read at all
    await hub.on_event(created("bob", 7))  # the lost message, late: already handed on
    assert storage.reads == [5] and bob._items == []


async def test_too_much_to_catch_up_or_no_storage_makes_each_stream_look_itself() -> None:
    storage = Storage(*(batch(n, "alice") for n in range(1, 6)))
    hub = following(storage, newest=0, limit=3)
    alice = hub.attach("alice")
    await hub.on_event(Resumed())
    assert await alice.next() is RESYNC
    await hub.on_event(created("alice", 6))  # after the newest: handed on as it comes
    assert await taken(alice, 1) == [(6, "T6")]

    down = Storage(batch(1, "bob"), failing=True)
    hub = following(down, newest=0)
    bob = hub.attach("bob")
    await hub.on_event(created("bob", 2))
    assert await taken(bob, 2) == [RESYNC, (2, "T2")]


async def test_the_periodic_check_finds_a_lost_message_and_leaves_streams_be_on_failure(
        ) -> None:
    storage = Storage(batch(3, "alice"))
    hub = following(storage, newest=2)
    alice = hub.attach("alice")
    await hub.check()  # another process's message for 3 never came
    assert await taken(alice, 1) == [(3, "T3")]
    await hub.check()
    assert storage.reads == [3]  # nothing newer: no second read

    storage.failing = True
    storage.stored.append(batch(4, "alice").notification("alice"))
    with pytest.raises(OSError):
        await hub.check()  # logged by the loop that runs it; no stream is disturbed
    assert alice._items == []
    storage.failing = False
    await hub.check()
    assert await taken(alice, 1) == [(4, "T4")]


async def test_heartbeats_go_to_idle_streams_only() -> None:
    hub = NotificationHub(queue_size=10, heartbeat_seconds=10)
    idle, busy, writing = hub.attach("alice"), hub.attach("bob"), hub.attach("carol")
    start = asyncio.get_running_loop().time()
    assert hub.beat(start + 5) == 0  # nobody idle long enough
    await hub.on_event(created("bob", 1))  # bob's stream has something to write
    writing.writing_since = start + 8  # carol's is writing
    assert hub.beat(start + 11) == 1
    assert await idle.next() is HEARTBEAT
    assert hub.beat(start + 11) == 1  # alice again: her heartbeat was not written yet
    assert [(await busy.next()).seq] == [1]  # type: ignore[union-attr]


async def test_a_stream_opened_while_the_hub_reads_storage_looks_for_itself() -> None:
    storage = Storage(batch(2, "alice"))
    hub = following(storage, newest=0)
    alice = hub.attach("alice")
    late: list[Listener] = []
    real = storage.since

    async def since(position: int, user_ids: list[str],
                    limit: int) -> tuple[list[Notification], int]:
        late.append(hub.attach("bob"))  # bob's stream opens while the hub waits
        return await real(position, user_ids, limit)

    hub.follow(0, since, storage.newest)
    await hub.on_event(created("alice", 3))  # 1 and 2 were not heard of
    assert await taken(alice, 2) == [(2, "T2"), (3, "T3")]
    assert await late[0].next() is RESYNC  # bob was not asked about: he reads his own
