"""Contract of the event bus port, on every adapter of it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.memory import InProcessEventBus
from app.domain.events import DomainEvent
from ports.events import EventBus

EVENT = DomainEvent("license.transferred", datetime(2026, 11, 26, tzinfo=UTC), ("a", "b"),
                    {"number": "LIC-2026-000001"})


@pytest.fixture(params=["memory"])
def bus(request: pytest.FixtureRequest) -> EventBus:
    return InProcessEventBus()


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
    leave()
    await bus.publish(EVENT)
    assert first == [EVENT] and second == [EVENT, EVENT]


async def test_a_failing_subscriber_does_not_stop_the_others(bus: EventBus) -> None:
    got: list[DomainEvent] = []

    async def broken(event: DomainEvent) -> None:
        raise RuntimeError("subscriber bug")

    async def working(event: DomainEvent) -> None:
        got.append(event)

    bus.subscribe(broken)
    bus.subscribe(working)
    await bus.publish(EVENT)
    assert got == [EVENT]
