"""Event bus port: domain events out of the core, to whoever listens."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from app.domain.events import DomainEvent


@dataclass(frozen=True)
class Resumed:
    """What a bus tells its own subscribers (no one else) when events may have been lost:
    it had lost its server and has it back, or a publish failed. Whatever events announce
    is then to be re-read from storage."""


Heard: TypeAlias = DomainEvent | Resumed
Subscriber = Callable[[Heard], Awaitable[None]]


class EventPublisher(Protocol):
    async def publish(self, event: DomainEvent) -> None:
        """Hand the event to every subscriber. At most once: a subscriber that is down
        misses it, so what must not be lost is stored before it is published."""


class EventBus(EventPublisher, Protocol):
    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call `subscriber` with every event from now on; the returned function stops it.
        A subscriber that raises is logged and does not stop the others."""

    async def probe(self) -> str:
        """Whether the bus's server answers now: what was found, or an exception. For
        operators (`portal check`)."""
