"""In-process adapters for the embedded default (one process)."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable

from app.domain.events import DomainEvent
from ports.events import Heard, Subscriber

log = logging.getLogger(__name__)


class InProcessEventBus:
    """Calls each subscriber in turn; one that fails is logged and does not stop the rest."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self.published = 0

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; the returned function removes it again."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def stats(self) -> dict[str, float]:
        return {"published": self.published, "publish_failures": 0, "dropped": 0,
                "waiting": 0}

    async def probe(self) -> str:
        return "in this process (one portal process only)"

    async def publish(self, event: DomainEvent) -> None:
        self.published += 1
        await hand_on(self._subscribers, event)


async def hand_on(subscribers: list[Subscriber], event: Heard) -> None:
    """Each subscriber in turn; one that fails is logged and does not stop the rest."""
    for subscriber in list(subscribers):
        try:
            await subscriber(event)
        except Exception:
            log.exception("a subscriber failed on %s", type(event).__name__)


class LruBlobCache:
    """Results kept in this process's memory, least recently used out first."""

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._size = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    async def put(self, key: str, value: bytes) -> None:
        if len(value) > self._max:
            return
        if key in self._items:
            self._size -= len(self._items.pop(key))
        self._items[key] = value
        self._size += len(value)
        while self._size > self._max:
            _, dropped = self._items.popitem(last=False)
            self._size -= len(dropped)
