"""Contract of the event bus port, on every adapter of it: in-process, and Redis pub/sub
against the server on 127.0.0.1:6379.

Redis delivers after `publish` returns, so deliveries are awaited with a deadline.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from adapters.memory import InProcessEventBus
from adapters.redis import RedisEventBus
from app.domain.events import DomainEvent
from ports.events import RESUMED, EventBus
from tests.live import free_port

REDIS_URL = "redis://127.0.0.1:6379/0"
EVENT = DomainEvent("license.transferred", datetime(2026, 11, 26, tzinfo=UTC), ("a", "b"),
                    {"number": "LIC-2026-000001"})


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
    first: list[DomainEvent] = []
    second: list[DomainEvent] = []

    async def one(event: DomainEvent) -> None:
        first.append(event)

    async def two(event: DomainEvent) -> None:
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
    got: list[DomainEvent] = []

    async def broken(event: DomainEvent) -> None:
        raise RuntimeError("subscriber bug")

    async def working(event: DomainEvent) -> None:
        got.append(event)

    bus.subscribe(broken)
    bus.subscribe(working)
    await bus.publish(EVENT)
    await bus.publish(EVENT)
    await eventually(lambda: got == [EVENT, EVENT])


async def test_events_arrive_whole_and_in_order(bus: EventBus) -> None:
    got: list[DomainEvent] = []

    async def keep(event: DomainEvent) -> None:
        got.append(event)

    bus.subscribe(keep)
    sent = [DomainEvent("release.published",
                        datetime(2026, 11, 26, 10, n, tzinfo=timezone(timedelta(hours=2))),
                        (f"cabinet-{n}",), {"n": n, "title": "Ünïcode ✓", "nested": {"a": [1]}})
            for n in range(20)]
    for event in sent:
        await bus.publish(event)
    await eventually(lambda: len(got) == len(sent))
    assert got == sent
    assert all(e.at.utcoffset() == timedelta(hours=2) for e in got)


@pytest.mark.redis
async def test_an_event_published_by_one_process_reaches_the_others() -> None:
    channel = f"test-{uuid.uuid4().hex}"
    a, b = await redis_bus(channel), await redis_bus(channel)
    try:
        assert await a.ready(5) and await b.ready(5)
        on_a: list[DomainEvent] = []
        on_b: list[DomainEvent] = []

        async def keep_a(event: DomainEvent) -> None:
            on_a.append(event)

        async def keep_b(event: DomainEvent) -> None:
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
    heard: list[DomainEvent] = []

    async def keep(event: DomainEvent) -> None:
        heard.append(event)

    nobody.subscribe(keep)
    try:
        assert not await nobody.ready(0.3)
        await nobody.publish(EVENT)  # returns; nothing raised
        assert "not published, Redis is unavailable" in caplog.text
        # This process's own subscribers are told to look in storage instead.
        assert [e.name for e in heard] == [RESUMED]
    finally:
        await nobody.close()


@pytest.mark.redis
async def test_the_listener_comes_back_after_redis_restarts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A Redis of our own on a free port, killed and started again under the bus."""
    port = free_port()
    command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
               "--appendonly", "no", "--dir", str(tmp_path)]

    async def start() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.DEVNULL)

    server = await start()
    bus = await redis_bus("restart", url=f"redis://127.0.0.1:{port}/0")
    got: list[DomainEvent] = []
    resumed: list[DomainEvent] = []

    async def keep(event: DomainEvent) -> None:
        (resumed if event.name == RESUMED else got).append(event)

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
        assert len(resumed) == 2 and all(e.data == {} for e in resumed)
    finally:
        await bus.close()
        server.kill()
        await server.wait()


@pytest.mark.redis
async def test_configuration_puts_the_portal_on_redis(settings_for) -> None:  # type: ignore[no-untyped-def]
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
    got: list[DomainEvent] = []

    async def keep(event: DomainEvent) -> None:
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
        await eventually(lambda: [e.name for e in got] == ["release.published"])
        assert got[0].data["product_id"] == product.id and got[0].data["version"] == "1.0"
    finally:
        await elsewhere.close()
