"""Contract of the event bus port, on every adapter of it: in-process, and Redis pub/sub
against the server on 127.0.0.1:6379.

Redis delivers after `publish` returns, so deliveries are awaited with a deadline.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import get_args

import pytest

from adapters.memory import InProcessEventBus
from adapters.redis import RedisEventBus
from app.domain import events
from app.domain.events import DomainEvent
from app.domain.licensing import DocumentKind
from app.domain.notifications import Batch, Message, NotificationKind
from app.domain.releases import ReleaseKind
from ports.events import EventBus, Heard, Resumed
from tests.live import free_port, redis_server
from tests.world import SettingsFor

REDIS_URL = "redis://127.0.0.1:6379/0"
EVENT = events.DocumentTransferred(
    kind=DocumentKind.LICENSE, document_id="d1", number="LIC-2026-000001",
    from_cabinet_id="a", from_name="Acme", to_cabinet_id="b", to_name="Acme Labs")
AT = datetime(2026, 11, 26, 10, 0, tzinfo=timezone(timedelta(hours=2)))


def one_of_each(n: int) -> list[DomainEvent]:
    """An event of every kind there is, with what must survive the wire: other scripts,
    dates, times with their offset, enums, empty and long tuples."""
    kind = DocumentKind.CERTIFICATE
    return [
        events.DocumentIssued(kind=kind, document_id=f"d{n}", number="CRT-2026-000002",
                              product_name="Ünïcode ✓", valid_to=date(2027, 1, n % 28 + 1),
                              cabinet_ids=(f"cabinet-{n}", "other")),
        events.DocumentRenewed(kind=kind, document_id=f"d{n}", number="CRT-2026-000002",
                               valid_to=None, cabinet_ids=()),
        events.DocumentRevoked(kind=kind, document_id=f"d{n}", number="CRT-2026-000002",
                               cabinet_ids=("c",)),
        EVENT,
        events.ReleasePublished(product_id="p", product_name="DB Guard", release_id=f"r{n}",
                                version="2.0", kind=ReleaseKind.SECURITY, title="Fix «ü»",
                                published_on=date(2026, 11, 26)),
        events.UserInvited(user_id="u", cabinet_id="c", cabinet_name="Globex Europe",
                           inviter_name="Grace"),
        events.IssueOpened(issue_id=f"i{n}", number="SR-2026-000001", subject="Ünïcode",
                           cabinet_name="Acme"),
        events.IssueUpdated(issue_id=f"i{n}", number="SR-2026-000001", subject="S",
                            cabinet_id="c", change="resolved", by_staff=True,
                            assignee_id="a"),
        events.IssueCommented(issue_id=f"i{n}", number="SR-2026-000001", subject="S",
                              cabinet_id="c", author_name="Agent «Smith»", by_staff=True,
                              public=n % 2 == 0),
        events.NotificationsCreated(batch=Batch(
            position=n, id=f"b{n}", message=Message(NotificationKind.ANNOUNCEMENT, "Title",
                                                    "Body ✓", None),
            created_at=AT + timedelta(minutes=n), users=tuple(f"u{i}" for i in range(300)),
            audience=()), held=n % 2 == 0),
        events.MailQueued(count=n),
    ]


def test_every_event_class_is_in_the_samples() -> None:
    """So that every event there is crosses the wire in the test below."""
    assert {type(e) for e in one_of_each(0)} == set(get_args(DomainEvent))


async def eventually(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "not delivered in time"
        await asyncio.sleep(0.01)


async def redis_bus(channel: str, url: str = REDIS_URL) -> RedisEventBus:
    bus = RedisEventBus(url, channel)
    await bus.open()
    return bus


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[EventBus]:
    if request.param == "memory":
        yield InProcessEventBus()
        return
    opened = await redis_bus(f"test-{uuid.uuid4().hex}")
    assert await opened.ready(5), "not subscribed to Redis within 5 s"
    try:
        yield opened
    finally:
        await opened.close()


async def test_every_subscriber_gets_each_event_until_it_leaves(bus: EventBus) -> None:
    first: list[Heard] = []
    second: list[Heard] = []

    async def one(event: Heard) -> None:
        first.append(event)

    async def two(event: Heard) -> None:
        second.append(event)

    leave = bus.subscribe(one)
    bus.subscribe(two)
    await bus.publish(EVENT)
    await eventually(lambda: first == [EVENT] and second == [EVENT])
    leave()
    await bus.publish(EVENT)
    await eventually(lambda: second == [EVENT, EVENT])
    assert first == [EVENT]


async def test_a_failing_subscriber_does_not_stop_the_others(bus: EventBus) -> None:
    got: list[Heard] = []

    async def broken(event: Heard) -> None:
        raise RuntimeError("subscriber bug")

    async def working(event: Heard) -> None:
        got.append(event)

    bus.subscribe(broken)
    bus.subscribe(working)
    await bus.publish(EVENT)
    await bus.publish(EVENT)
    await eventually(lambda: got == [EVENT, EVENT])


async def test_events_arrive_whole_and_in_order(bus: EventBus) -> None:
    got: list[Heard] = []

    async def keep(event: Heard) -> None:
        got.append(event)

    bus.subscribe(keep)
    sent = [event for n in range(3) for event in one_of_each(n)]
    for event in sent:
        await bus.publish(event)
    await eventually(lambda: len(got) == len(sent))
    assert got == sent
    assert all(e.batch.created_at.utcoffset() == timedelta(hours=2) for e in got
               if isinstance(e, events.NotificationsCreated))


@pytest.mark.redis
async def test_an_event_published_by_one_process_reaches_the_others() -> None:
    channel = f"test-{uuid.uuid4().hex}"
    a, b = await redis_bus(channel), await redis_bus(channel)
    try:
        assert await a.ready(5) and await b.ready(5)
        on_a: list[Heard] = []
        on_b: list[Heard] = []

        async def keep_a(event: Heard) -> None:
            on_a.append(event)

        async def keep_b(event: Heard) -> None:
            on_b.append(event)

        a.subscribe(keep_a)
        b.subscribe(keep_b)
        await a.publish(EVENT)
        await eventually(lambda: on_a == [EVENT] and on_b == [EVENT])
    finally:
        await a.close()
        await b.close()


@pytest.mark.redis
async def test_publishing_without_redis_drops_the_event_and_does_not_fail(
        caplog: pytest.LogCaptureFixture) -> None:
    nobody = await redis_bus("test-down", url=f"redis://127.0.0.1:{free_port()}/0")
    heard: list[Heard] = []

    async def keep(event: Heard) -> None:
        heard.append(event)

    nobody.subscribe(keep)
    try:
        assert not await nobody.ready(0.3)
        await nobody.publish(EVENT)  # returns; nothing raised
        await eventually(lambda: "not published, Redis is unavailable" in caplog.text)
        # This process's own subscribers are told to look in storage instead.
        await eventually(lambda: heard == [Resumed()])
        assert nobody.failed == 1 and nobody.published == 0
    finally:
        await nobody.close()


@pytest.mark.redis
async def test_the_listener_comes_back_after_redis_restarts(tmp_path: Path) -> None:
    """A Redis of our own on a free port, killed and started again under the bus."""
    port = free_port()
    command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
               "--appendonly", "no", "--dir", str(tmp_path)]

    async def start() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.DEVNULL)

    server = await start()
    bus = await redis_bus("restart", url=f"redis://127.0.0.1:{port}/0")
    got: list[Heard] = []
    resumed: list[Heard] = []

    async def keep(event: Heard) -> None:
        (resumed if isinstance(event, Resumed) else got).append(event)

    bus.subscribe(keep)
    try:
        assert await bus.ready(5)
        await bus.publish(EVENT)
        await eventually(lambda: got == [EVENT])
        resumed.clear()  # the listener may have started before the server did
        server.kill()
        await server.wait()
        await eventually(lambda: not bus.listening)
        await bus.publish(EVENT)  # lost, as pub/sub loses it; nothing raised
        server = await start()
        assert await bus.ready(15), "the listener did not come back"
        await bus.publish(EVENT)
        await eventually(lambda: got == [EVENT, EVENT])
        # Its own subscribers heard twice that events may be lost: when the publish failed,
        # and when the listener was back.
        assert resumed == [Resumed(), Resumed()]
    finally:
        await bus.close()
        server.kill()
        await server.wait()


@pytest.mark.redis
async def test_a_frozen_redis_never_holds_a_publish(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """A Redis that stops answering (SIGSTOP: its socket stays open) made each publish
    wait out the socket timeout inside the request; now it returns at once, what cannot
    wait is dropped, counted and logged, and events flow again once Redis thaws."""
    with redis_server(tmp_path) as server:
        bus = RedisEventBus(server.url, "frozen", timeout_seconds=1.0, queue_size=5)
        await bus.open()
        heard: list[Heard] = []

        async def keep(event: Heard) -> None:
            heard.append(event)

        bus.subscribe(keep)
        try:
            assert await bus.ready(5)
            server.freeze()
            loop = asyncio.get_running_loop()
            started = loop.time()
            for _ in range(20):
                await bus.publish(EVENT)
            assert loop.time() - started < 0.2  # not 20 socket timeouts
            assert bus.dropped >= 14
            assert "dropped so far" in caplog.text and Resumed() in heard
            server.thaw()
            await eventually(lambda: bus.published >= 1, seconds=15)
            heard.clear()
            await bus.publish(EVENT)
            await eventually(lambda: EVENT in heard, seconds=15)
        finally:
            server.thaw()
            await bus.close()


@pytest.mark.redis
async def test_configuration_puts_the_portal_on_redis(settings_for: SettingsFor) -> None:
    """With event_bus.adapter=redis, a release registered by one portal reaches a
    subscriber of another portal process's bus on the same channel."""
    from app.container import open_services
    from app.domain.users import SYSTEM
    from app.services.catalog import ProductDraft
    from app.services.releases import ReleaseDraft

    channel = f"test-{uuid.uuid4().hex}"
    settings = settings_for("sqlite", PORTAL_EVENT_BUS__ADAPTER="redis",
                            PORTAL_EVENT_BUS__CHANNEL=channel)
    elsewhere = await redis_bus(channel)
    got: list[Heard] = []

    async def keep(event: Heard) -> None:
        got.append(event)

    elsewhere.subscribe(keep)
    try:
        assert await elsewhere.ready(5)
        async with open_services(settings) as services:
            assert isinstance(services.events, RedisEventBus)
            product = await services.catalog.create(SYSTEM, ProductDraft(
                code=f"bus-{uuid.uuid4().hex[:6]}", name="Bus", bucket="releases"))

            async def once() -> AsyncIterator[bytes]:
                yield b"image"
            await services.objects.put("releases", f"{product.prefix}1.0/a.iso", once())
            await services.releases.register(SYSTEM, product.id, ReleaseDraft("1.0"))
        await eventually(lambda: [type(e) for e in got] == [events.ReleasePublished])
        published = got[0]
        assert isinstance(published, events.ReleasePublished)
        assert published.product_id == product.id and published.version == "1.0"
    finally:
        await elsewhere.close()
