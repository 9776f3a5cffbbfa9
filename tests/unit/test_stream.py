"""The hub of live streams: delivery by user, a slow reader dropped without slowing others."""

from __future__ import annotations

from datetime import UTC, datetime

from app.domain.events import DomainEvent
from app.domain.notifications import Notification, NotificationKind
from app.services.notifications import CREATED, created_event
from app.web.stream import RESYNC, NotificationHub
from ports.events import RESUMED

AT = datetime(2026, 11, 27, tzinfo=UTC)


def created(user_id: str, seq: int) -> DomainEvent:
    made = [Notification(id=f"n{seq}", user_id=user_id, seq=seq,
                         kind=NotificationKind.ANNOUNCEMENT, title="T", body="B", link=None,
                         created_at=AT)]
    return DomainEvent(CREATED, AT, (), created_event(made))


async def test_each_listener_gets_its_users_notifications_in_order() -> None:
    hub = NotificationHub(queue_size=10)
    alice, bob = hub.attach("alice"), hub.attach("bob")
    for seq in (1, 2):
        await hub.on_event(created("alice", seq))
    await hub.on_event(created("bob", 1))
    assert [(await alice.next()).seq for _ in range(2)] == [1, 2]  # type: ignore[union-attr]
    got = await bob.next()
    assert got is not None and (got.user_id, got.seq) == ("bob", 1)


async def test_a_reader_that_falls_behind_is_dropped_and_the_others_go_on() -> None:
    hub = NotificationHub(queue_size=3)
    slow, quick = hub.attach("alice"), hub.attach("alice")
    for seq in range(1, 6):
        await hub.on_event(created("alice", seq))
        assert (await quick.next()).seq == seq  # type: ignore[union-attr]
    assert slow.dropped and not quick.dropped
    held = [await slow.next() for _ in range(4)]
    assert [n.seq if n else None for n in held] == [1, 2, 3, None]  # then the end mark


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
    await hub.on_event(DomainEvent(RESUMED, AT, (), {}))
    assert [await alice.next() for _ in range(2)][1] is RESYNC
    assert await bob.next() is RESYNC
    for _ in range(5):  # one mark waits, however often the bus comes back meanwhile
        await hub.on_event(DomainEvent(RESUMED, AT, (), {}))
    await hub.on_event(created("bob", 1))
    assert not bob.dropped
    first, _ = [await bob.next() for _ in range(2)]
    assert first is RESYNC
